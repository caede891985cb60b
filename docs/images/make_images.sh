#!/usr/bin/env bash
# Regenerate the user guide's pictures from the demo data (ten areas, seed 1, as of
# 2026-11-25): a Tayside chair's morning digest as email, and the top of Grampian's
# quarterly pack for 2026-27-Q2.
# Needs the project's virtualenv (make demo) and chromium. Run from the repository root:
#   docs/images/make_images.sh
set -euo pipefail
ROOT=$(pwd)
PY="$ROOT/.venv/bin/python"
MAPPA="$ROOT/.venv/bin/mappa"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export MAPPA_DATABASE_URL="sqlite:///$WORK/mappa.db"

"$MAPPA" demo-data "$WORK/data" --individuals 7000 --years 5 --seed 1 --until 2026-11-25 >/dev/null
"$MAPPA" import "$WORK/data" >/dev/null
"$MAPPA" report quarterly --period 2026-27-Q2 --as-of 2026-11-25 --area Grampian \
    --out "$WORK/pack.html" >/dev/null

# The digest the 09:00 job plans for one chair, rendered as the email it would be.
"$PY" - "$WORK/digest.html" <<'PYTHON'
import datetime as dt
import os
import sys

from bot.channels import render
from bot.jobs.ticks import LONDON, plan_job
from mappa_core.rules.planner import NudgeRules
from mappa_core.storage import db

notes = plan_job(db.make_engine(os.environ["MAPPA_DATABASE_URL"]), "digest", dt.datetime(2026, 11, 25, 9, 0, tzinfo=LONDON),
                 NudgeRules())
rows = [dict(r, id=i, channel="email", address="chair2@tayside.example")
        for i, r in enumerate(notes.to_dict("records"))
        if r["rule"] == "digest" and r["recipient_id"] == "tayside-chair-2"]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write(render(rows).html)
PYTHON

shot() {
    chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
        --hide-scrollbars --screenshot="$1" --window-size="$2" "file://$3" 2>/dev/null
}
shot "$ROOT/docs/images/digest-email.png" 900,460 "$WORK/digest.html"
shot "$ROOT/docs/images/quarterly-pack.png" 1000,1500 "$WORK/pack.html"
ls -l "$ROOT/docs/images/"*.png
