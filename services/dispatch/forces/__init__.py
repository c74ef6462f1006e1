"""力量调度 (forces): who goes — people and teams per unit, duty rosters, availability, positions,
suggest-and-assign (派单到人), joint operations (联合执法) and push to terminals (任务推送).

Pure rule modules: :mod:`.people` (the per-county document), :mod:`.availability` (duty and busy/free),
:mod:`.positions` (a terminal's batch → WGS-84 rows), :mod:`.suggestion` (who to send, with reasons),
:mod:`.signing` (webhook signatures and backoff), :mod:`.operation_rules` (the joint operation's
transition table). Use cases: :mod:`.service`, :mod:`.push`, :mod:`.operations`; tables :mod:`.tables`;
routes :mod:`.api`. 力量调度：人员与编组、排班、在岗、位置、派单到人、联合执法、任务推送。
"""
