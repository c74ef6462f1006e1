#!/bin/sh
# Container entrypoint: migrate this service's schema (reads DATABASE_URL), then run it.
#   SERVICE  intake | dispatch | grid | metrics
#   PORT     port uvicorn listens on
# Extra arguments are passed to uvicorn (e.g. --workers 2).
set -eu

: "${SERVICE:?set SERVICE to intake, dispatch, grid or metrics}"
: "${PORT:?set PORT}"

case "$SERVICE" in
    intake | dispatch | grid | metrics) ;;
    *)
        echo "entrypoint: unknown SERVICE '$SERVICE' (intake, dispatch, grid or metrics)" >&2
        exit 64
        ;;
esac

if [ "${SKIP_MIGRATIONS:-0}" != "1" ]; then
    : "${DATABASE_URL:?set DATABASE_URL (migrations run before the service starts)}"
    python -m shared.migrations "$SERVICE"
fi

exec uvicorn --factory "services.${SERVICE}.app:create_app" --host 0.0.0.0 --port "$PORT" "$@"
