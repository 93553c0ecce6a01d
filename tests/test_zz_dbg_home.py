import json
from tests.test_home import *
from tests import test_home

def test_dbg(tmp_path, monkeypatch):
    world, stack = build_world(tmp_path, monkeypatch, f"sqlite:///{tmp_path}/x.db", extra_owner_tokens=40)
    server = _serve(world)
    try:
        home = open_home(world, OWNER)
        print("BLOCKS", len(home["blocks"]))
        for b in home["blocks"]:
            print(b["type"], json.dumps(b)[:150])
    finally:
        server.__exit__(None, None, None)
        for m in reversed(stack): m.__exit__(None, None, None)
