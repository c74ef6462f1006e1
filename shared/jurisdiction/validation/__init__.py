"""Validation of a jurisdiction bundle 辖区数据包校验, one module per section of the bundle.

:func:`shared.jurisdiction.validation.bundle.check_bundle` runs them in order: division
tree, geometry, units, matters, township functions, devolution, source mappings, rules.
按区划树、几何、单位、事项、镇街职能、下放清单、来源映射、规则的顺序校验。
"""
