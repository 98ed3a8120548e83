#!/usr/bin/env python3
"""Keyboard-only walk through three flows (Tab, arrows, typing, Enter; no clicks): declare an
incident, write and publish a post-mortem, close an action item. Each Tab checks the focused
element has a visible outline. Usage: scripts/keyboard_flows.py BASE_URL EMAIL PASSWORD (an admin,
on a database with `hindsight demo` loaded and a service `checkout`)."""
import json, socket, subprocess, sys, time, urllib.request
BASE = sys.argv[1]; EMAIL = sys.argv[2]; PASSWORD = sys.argv[3]
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(WD + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"{}").get("value")
port = free_port(); WD = f"http://127.0.0.1:{port}"
drv = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
KEYS = {"TAB": "\ue004", "ENTER": "\ue007", "SPACE": "\ue00d", "DOWN": "\ue015", "SHIFT": "\ue008"}
log = []
try:
    for _ in range(50):
        try: call("GET", "/status"); break
        except OSError: time.sleep(0.1)
    sid = call("POST", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"args": ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"]}}}})["sessionId"]
    S = f"/session/{sid}"
    def js(script, *args): return call("POST", S + "/execute/sync", {"script": script, "args": list(args)})
    def keys(*seq):
        actions = []
        for k in seq:
            actions += [{"type": "keyDown", "value": k}, {"type": "keyUp", "value": k}]
        call("POST", S + "/actions", {"actions": [{"type": "key", "id": "kb", "actions": actions}]})
    def typ(text): keys(*list(text))
    def goto(path): call("POST", S + "/url", {"url": BASE + path}); time.sleep(0.3)
    def active(): return js("const a=document.activeElement; const cs=getComputedStyle(a); return [a.tagName.toLowerCase()+(a.id?'#'+a.id:'')+(a.getAttribute('href')?'[href='+a.getAttribute('href')+']':'')+' '+(a.innerText||a.value||'').trim().slice(0,40), cs.outlineStyle+' '+cs.outlineWidth+' '+cs.outlineColor]")
    tabs = {"n": 0}
    def tab_to(selector, limit=120):
        for _ in range(limit):
            keys(KEYS["TAB"]); tabs["n"] += 1
            if js("return document.activeElement.matches(arguments[0])", selector):
                el, outline = active()
                if outline.startswith("none"):
                    raise SystemExit(f"focus on {el} is not visible ({outline})")
                return el
        raise SystemExit(f"could not reach {selector} with Tab from {js('return location.pathname')}")
    def path(): return js("return location.pathname + location.search")
    # First Tab on a page reaches the skip link.
    goto("/login"); keys(KEYS["TAB"]); first = active()[0]; log.append(f"first Tab on /login: {first}")
    tab_to("#email"); typ(EMAIL); tab_to("#password"); typ(PASSWORD); keys(KEYS["ENTER"]); time.sleep(0.8)
    log.append(f"signed in with the keyboard, at {path()}")
    # 1. Declare an incident.
    tabs["n"] = 0
    goto("/incidents"); tab_to("a[href='/incidents/new']"); keys(KEYS["ENTER"]); time.sleep(0.5)
    tab_to("#title"); typ("Keyboard-only declared incident")
    tab_to("input[name=severity]"); keys(KEYS["DOWN"])  # arrows move within the radio group
    tab_to("#service"); typ("checkout"); tab_to("#category"); typ("deploy")
    tab_to("form button[type=submit]"); keys(KEYS["ENTER"]); time.sleep(0.8)
    incident = path(); title = js("return document.querySelector('h1') && document.querySelector('h1').innerText")
    sev = js("return document.querySelector('.sev').innerText")
    log.append(f"1. declared: {incident} '{title}' after {tabs['n']} Tabs; severity {sev}")
    # 2. Write and publish a post-mortem (on the new incident): start it, write the summary.
    tabs["n"] = 0
    tab_to("a[href$='/postmortem']"); keys(KEYS["ENTER"]); time.sleep(0.5)
    log.append(f"2. post-mortem page {path()}")
    try:
        tab_to("form[action$='/postmortem'] button[type=submit]", 200); keys(KEYS["ENTER"]); time.sleep(0.8)
        log.append(f"   started, now at {path()}")
    except SystemExit as e:
        log.append(f"   start button: {e}")
    try:
        if not path().endswith("/edit"):
            tab_to("a[href*='/postmortem/edit']", 200); el = active()[0]; keys(KEYS["ENTER"]); time.sleep(0.6)
            log.append(f"   edit via {el} → {path()}")
        tab_to("textarea", 200); typ("Checkout failed after a deploy; rolled back in 12 minutes.")
        tab_to("form button[type=submit]", 200); el = active()[0]; keys(KEYS["ENTER"]); time.sleep(0.8)
        flash = js("const f=document.querySelector('.flash'); return f && f.innerText")
        log.append(f"   saved with {el} → {path()}; flash: {flash}")
        tab_to("button[value=published], form[action$='/status'] button", 300); el = active()[0]; keys(KEYS["ENTER"]); time.sleep(0.8)
        says = js("const f=document.querySelector('.flash, .missing, .field-error, .card.warn'); return f && f.innerText.slice(0,200)")
        log.append(f"   publish via {el} → {path()}; page says: {says}")
    except SystemExit as e:
        log.append(f"   {e}")
    log.append(f"   {tabs['n']} Tabs")
    # 2b. Publish one that is ready (from the demo data), with the keyboard.
    for n in range(1, 41):
        goto(f"/incidents/INC-{n}/postmortem")
        if js("return !!document.querySelector('button[value=published]')"):
            tabs["n"] = 0
            tab_to("button[value=published]", 400); el = active()[0]; keys(KEYS["ENTER"]); time.sleep(0.8)
            status = js("const s=document.querySelector('.pm-status'); return s && s.innerText")
            log.append(f"2b. INC-{n}: published with {el} after {tabs['n']} Tabs; status now {status!r}")
            break
    else:
        log.append("2b. no demo post-mortem was ready to publish")
    # 3. Close an action item from the board (status select + save on its row/edit page).
    tabs["n"] = 0
    goto("/action-items?owner=me"); goto("/action-items")
    tab_to("table a[href^='/incidents/']"); item = active()[0]
    goto("/action-items")
    tab_to("a[href^='/incidents/INC-'][href*='#item-']"); href = js("return document.activeElement.getAttribute('href')"); keys(KEYS["ENTER"]); time.sleep(0.6)
    item_id = href.split('#item-')[1]
    tab_to(f"#st-{item_id}"); typ("done"); tab_to(f"#st-{item_id} ~ button, form:has(#st-{item_id}) button[type=submit]"); el = active()[0]; keys(KEYS["ENTER"]); time.sleep(0.8)
    shown = js("const s=document.getElementById('st-'+arguments[0]); return s && s.value", item_id)
    log.append(f"3. action item {item_id}: status set to done with the keyboard via {el}; now shows: {shown!r}; {tabs['n']} Tabs")
finally:
    print("\n".join(log))
    try: call("DELETE", f"/session/{sid}")
    except Exception: pass
    drv.kill()
