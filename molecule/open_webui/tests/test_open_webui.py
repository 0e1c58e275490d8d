"""Open WebUI on owui-node12 (venv, offline profile): it serves, and nothing it does phones home.

The proof of absence and its negative control run in file order: first the user flows with the
offline profile and an empty sinkhole log, then Open WebUI started with its default settings on a
copy of the same data, which the sinkhole must see reaching out.
"""

import json
import shlex

testinfra_hosts = ["ansible://owui-node12"]

NODE = "owui-node12"
SINK = "owui-sink"
SINK_LOG = "/var/log/sinkhole.jsonl"
VERSION = "0.12.4"
API = "http://127.0.0.1:8080"
ENV_FILE = "/etc/open-webui/open-webui.env"
ADMIN = ("admin@owui.test", "molecule-only-Admin-pw1")
MODELS = ["smollm2:135m", "tiny-embed:v1", "tinyllama:1b"]
# A word only the uploaded document holds: the answer shows that the document reached the model.
DOC_WORD = "quartzfjord7719"
# Open WebUI started with its defaults for everything the offline profile pins (the negative control):
# only where it lives, which requirement set is installed, its secrets and a spare loopback port.
DEFAULTS_KEEP = (
    "USE_SLIM_DOCKER",
    "VECTOR_DB",
    "BYPASS_EMBEDDING_AND_RETRIEVAL",
    "WEBUI_SECRET_KEY",
    "WEBUI_ADMIN_EMAIL",
    "WEBUI_ADMIN_NAME",
    "WEBUI_ADMIN_PASSWORD",
)
DEFAULTS_DIR = "/var/tmp/owui-defaults"  # noqa: S108 - on the test node, made and removed by the test
DEFAULTS_PORT = 8099

# Run on the node with its python3: sign in, sign-up, models, a chat, a document upload and a chat
# about it, the version; prints one JSON document of what each answered.
FLOWS = r"""
import json, sys, urllib.error, urllib.request, uuid
api, email, password, doc_word = sys.argv[1:5]

def call(method, path, body=None, token=None, raw=None, ctype="application/json", timeout=120):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(api + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", ctype)
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")[:300]

out = {}
status, signin = call("POST", "/api/v1/auths/signin", {"email": email, "password": password})
out["signin"] = [status, signin.get("role") if isinstance(signin, dict) else signin]
token = signin.get("token") if isinstance(signin, dict) else None
stranger = {"name": "x", "email": "s-%s@owui.test" % uuid.uuid4().hex[:8], "password": "Signup-refused-1"}
out["signup"] = call("POST", "/api/v1/auths/signup", stranger)[0]
status, models = call("GET", "/api/models", token=token)
out["models"] = [status, sorted(m["id"] for m in models["data"]) if status == 200 else models]
chat = {"model": "smollm2:135m", "stream": False,
        "messages": [{"role": "user", "content": "Say hello to the air gap."}]}
status, answer = call("POST", "/api/chat/completions", chat, token=token)
out["chat"] = [status, answer["choices"][0]["message"]["content"] if status == 200 else answer]
boundary = uuid.uuid4().hex
document = ("Field notes. The code word of the vault is %s. Nothing else matters.\n" % doc_word).encode()
form = (b"--" + boundary.encode()
        + b"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"notes.txt\"\r\n"
        b"Content-Type: text/plain\r\n\r\n" + document + b"\r\n--" + boundary.encode() + b"--\r\n")
status, uploaded = call("POST", "/api/v1/files/?process=true&process_in_background=false", raw=form,
                        token=token,
                        ctype="multipart/form-data; boundary=" + boundary)
out["upload"] = [status, uploaded.get("id") if isinstance(uploaded, dict) else uploaded]
if status == 200:
    ask = {"model": "smollm2:135m", "stream": False, "files": [{"type": "file", "id": uploaded["id"]}],
           "messages": [{"role": "user", "content": "What is the code word of the vault?"}]}
    status, answer = call("POST", "/api/chat/completions", ask, token=token)
    out["document_chat"] = [status, answer["choices"][0]["message"]["content"] if status == 200 else answer]
out["version"] = call("GET", "/api/version")
print(json.dumps(out))
"""


def run_flows(host, api):
    script = f"python3 - {shlex.quote(api)} {ADMIN[0]} {ADMIN[1]} {DOC_WORD} <<'PYEOF'\n{FLOWS}\nPYEOF"
    return json.loads(host.check_output(script))


def sink_records(node, client):
    """What the sinkhole recorded from ``client`` (JSON lines of its log)."""
    sink = node(SINK)
    lines = sink.check_output(f"cat {SINK_LOG} 2>/dev/null || true").splitlines()
    return [r for r in map(json.loads, filter(None, lines)) if r.get("client") == client]


def node_address(host):
    return host.check_output("ip -4 -o addr show scope global").split()[3].split("/")[0]


def test_the_service_is_ready_on_loopback_only_with_the_pinned_release(host):
    assert host.service("open-webui.service").is_running
    assert host.service("open-webui.service").is_enabled
    assert json.loads(host.check_output(f"curl -sf {API}/api/version"))["version"] == VERSION
    assert host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' {API}/ready") == "200"
    listening = host.check_output("ss -H -l -t -n 'sport = :8080'").split()
    assert listening[3] == "127.0.0.1:8080", listening
    # The command links to the venv of the pinned release, installed from the wheelhouse.
    assert host.file("/usr/local/bin/open-webui").linked_to == f"/opt/open-webui/{VERSION}/bin/open-webui"
    assert (
        host.run(
            f"cd /opt/open-webui/{VERSION} && sha256sum --check --strict --quiet .airgap-llm-files.sha256"
        ).rc
        == 0
    )


def test_the_unit_is_hardened_and_the_secrets_root_only(host):
    out = host.check_output("systemd-analyze security --no-pager open-webui.service | tail -n 1")
    exposure = float(out.split(":")[1].split()[0])
    assert exposure <= 2.0, out
    env = host.file(ENV_FILE)
    assert (env.user, env.group, env.mode) == ("root", "root", 0o600)
    settings = dict(
        line.split("=", 1) for line in host.check_output(f"cat {ENV_FILE}").splitlines() if "=" in line
    )
    for name, value in {
        "OFFLINE_MODE": "true",
        "ENABLE_OPENAI_API": "false",
        "ENABLE_SIGNUP": "false",
        "HF_HUB_OFFLINE": "1",
        "ENABLE_VERSION_UPDATE_CHECK": "false",
        "OLLAMA_BASE_URL": "http://127.0.0.1:11434",
        "RAG_EMBEDDING_ENGINE": "ollama",
        "ENABLE_PERSISTENT_CONFIG": "false",
        "HOST": "127.0.0.1",
        "DATA_DIR": "/var/lib/open-webui/data",
        "STATIC_DIR": "/var/lib/open-webui/static",
    }.items():
        assert settings.get(name) == value, name
    # The service user cannot read the secrets; systemd hands them over.
    assert host.run(f"runuser -u open-webui -- cat {ENV_FILE}").rc != 0


def test_user_flows_with_the_offline_profile_reach_nothing_outside(host, node):
    address = node_address(host)
    before = sink_records(node, address)
    flows = run_flows(host, API)
    assert flows["signin"] == [200, "admin"], flows
    assert flows["signup"] in (400, 401, 403), flows
    assert flows["models"] == [200, MODELS], flows
    assert flows["chat"][0] == 200 and "Say hello to the air gap." in flows["chat"][1], flows
    assert flows["upload"][0] == 200, flows
    assert flows["document_chat"][0] == 200 and DOC_WORD in flows["document_chat"][1], flows
    assert flows["version"][0] == 200 and flows["version"][1]["version"] == VERSION, flows
    # Nothing from this node ever reached the sinkhole: not since the resolver pointed at it (before
    # Open WebUI was installed), not during these flows.
    assert before == [], before
    assert sink_records(node, address) == []


def test_negative_control_open_webui_defaults_phone_home_and_the_sinkhole_sees_it(host, node):
    """The same release on a copy of the data, with Open WebUI's defaults: the sinkhole must see it."""
    address = node_address(host)
    settings = [
        line
        for line in host.check_output(f"cat {ENV_FILE}").splitlines()
        if line.split("=", 1)[0] in DEFAULTS_KEEP
    ]
    host.check_output(
        f"rm -rf {DEFAULTS_DIR}"
        f" && install -d -o open-webui -g open-webui -m 0750 {DEFAULTS_DIR} {DEFAULTS_DIR}/static"
        f" && cp -a /var/lib/open-webui/data {DEFAULTS_DIR}/data"
    )
    env = [
        f"DATA_DIR={DEFAULTS_DIR}/data",
        f"STATIC_DIR={DEFAULTS_DIR}/static",
        f"HOME={DEFAULTS_DIR}",
        *settings,
    ]
    setenv = " ".join("--setenv=" + shlex.quote(item) for item in env)
    try:
        host.check_output(
            "systemd-run --unit=owui-defaults --uid=open-webui --gid=open-webui "
            f"-p WorkingDirectory={DEFAULTS_DIR} "
            f"{setenv} /usr/local/bin/open-webui serve --host 127.0.0.1 --port {DEFAULTS_PORT}"
        )
        ready = host.run(
            f"python3 /usr/local/libexec/airgap-llm/http-ready http://127.0.0.1:{DEFAULTS_PORT}/ready 300"
        )
        assert ready.rc == 0, (
            ready.stderr + host.run("journalctl -u owui-defaults --no-pager | tail -n 30").stdout
        )
        run_flows(host, f"http://127.0.0.1:{DEFAULTS_PORT}")
        seen = sink_records(node, address)
        print("the sinkhole saw, with Open WebUI's defaults:", json.dumps(seen, indent=1))
        names = {r.get("name") or r.get("server_name") or r.get("host") for r in seen}
        assert seen, "Open WebUI's defaults reached out nowhere: this proof could not have failed"
        assert any(name and "openai.com" in name for name in names), names
        # Kept aside, so that the proof above starts from an empty log when verify runs again.
        node(SINK).check_output(f"cat {SINK_LOG} >> {SINK_LOG}.control && truncate -s 0 {SINK_LOG}")
    finally:
        host.run("systemctl stop owui-defaults.service; systemctl reset-failed owui-defaults.service")
        host.run(f"rm -rf {DEFAULTS_DIR}")


def test_the_role_refuses_the_venv_method_on_debian_13(playbook, tmp_path):
    play = tmp_path / "refuse.yml"
    play.write_text(
        """
- name: The venv method on a Debian 13 node
  hosts: owui-repo
  gather_facts: false
  tasks:
    - name: Run the role's checks
      ansible.builtin.include_role:
        name: airgap.llm.open_webui
        tasks_from: preflight
      vars:
        open_webui_version: 0.12.4
        open_webui_wheelhouse_lock_sha256: "{{ '0' * 64 }}"
        open_webui_secret_key: molecule-only-secret-key-0123456789abcdef
        open_webui_admin_email: admin@owui.test
        open_webui_admin_password: molecule-only-Admin-pw1
"""
    )
    rc, out = playbook(play)
    assert rc != 0, out
    assert (
        "needs Python 3.11 or 3.12; /usr/bin/python3 on this node is 3.13 (Debian 13 has only 3.13)" in out
    ), out


def test_the_role_verify_entry_reports_every_check_ok(playbook, tmp_path):
    report_file = tmp_path / "report.json"
    play = tmp_path / "verify.yml"
    play.write_text(
        f"""
- name: Verify Open WebUI
  hosts: open_webui
  gather_facts: false
  tasks:
    - name: Run the role's verify entry point
      ansible.builtin.include_role:
        name: airgap.llm.open_webui
        tasks_from: verify
    - name: Keep the report on the controller
      ansible.builtin.copy:
        content: "{{{{ open_webui_report | to_json }}}}"
        dest: {report_file}
        mode: "0600"
      delegate_to: localhost
      become: false
"""
    )
    rc, out = playbook(play)
    assert rc == 0, out
    report = json.loads(report_file.read_text())
    assert [c for c in report["checks"] if not c["ok"]] == [], report
    assert report["ok"] is True
    assert report["models"] == MODELS
    assert float(report["exposure"]) <= 2.0, report
    # It changed nothing on the node (the report's copy on the controller is the one change).
    recap = next(line for line in out.splitlines() if line.startswith(NODE) and "changed=" in line)
    assert "changed=1 " in recap, recap


def test_verify_yml_reports_open_webui_and_records_it(playbook, node, tmp_path):
    """playbooks/verify.yml, as an operator runs it: the node's Open WebUI report, an audit event."""
    audit = node("owui-repo").file("/var/log/airgap-llm/audit.jsonl")
    before = audit.content_string.count("\n") if audit.exists else 0
    rc, out = playbook("playbooks/verify.yml", "--limit", NODE, "-e", f"airgap_verify_report_dir={tmp_path}")
    assert rc == 0, out
    report = json.loads((tmp_path / f"{NODE}.open_webui.json").read_text())
    assert report["ok"] is True, report
    assert {c["check"] for c in report["checks"]} >= {
        "ready",
        "admin_login",
        "signup_refused",
        "models",
        "chat",
    }, report
    assert report["models"] == MODELS
    assert f"{NODE}: Open WebUI OK" in out, out
    events = [json.loads(line) for line in audit.content_string.splitlines()[before:]]
    assert any(
        e["action"] == "verify" and f"verify.yml on {NODE}: open-webui" in e["detail"] for e in events
    ), events
