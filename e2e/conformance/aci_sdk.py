"""Drive `vk-cloud serve --face aci` with Microsoft's own Python clients, as their users call them.

Usage: aci_sdk.py ENDPOINT(https://host:port) CA_PEM TENANT CLIENT_ID SECRET SUBSCRIPTION
       FED_CLIENT_ID FED_TOKEN_FILE BAD_FED_TOKEN_FILE MI_CLIENT_ID
Prints one `ok <step>` line per check and exits non-zero (with the reason) at the first one
that fails.

Tokens come from the face's Azure AD endpoint through azure-identity (ClientSecretCredential,
and WorkloadIdentityCredential with a federated token file) and from its instance metadata
service (ManagedIdentityCredential, pointed at the face by AZURE_POD_IDENTITY_AUTHORITY_HOST); azure-mgmt-containerinstance
creates, reads, lists, patches, restarts, stops, starts and deletes groups (its long-running
operation pollers must finish), reads logs, usages and capabilities, and opens exec and attach
sockets with websocket-client. Every answer must parse into the SDK's models; errors must come
as the SDK's HttpResponseError carrying ARM's code.
"""
import base64
import os
import sys
import time

import websocket
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import ClientSecretCredential, ManagedIdentityCredential, WorkloadIdentityCredential
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance import models as m

(ENDPOINT, CA, TENANT, CLIENT_ID, SECRET, SUB, FED_CLIENT, FED_FILE, BAD_FED_FILE, MI_CLIENT) = sys.argv[1:11]
SCOPE = "https://management.azure.com/.default"
RG = "vk-rg"
LOCATION = "westeurope"


def ok(step):
    print("ok", step, flush=True)


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def fails_with(code, call, what):
    try:
        call()
    except HttpResponseError as e:
        got = e.error.code if e.error else None
        check(got == code, f"{what}: expected {code}, got {got} ({e.message})")
        return e
    raise SystemExit(f"FAILED: {what}: no error, expected {code}")


def credential_kwargs():
    return dict(authority=ENDPOINT, disable_instance_discovery=True, connection_verify=CA)


def client(cred):
    return ContainerInstanceManagementClient(
        cred, SUB, base_url=ENDPOINT, credential_scopes=[SCOPE], connection_verify=CA, polling_interval=1
    )


def group(cpu=0.5, memory=1.0, name_suffix=""):
    secret_file = base64.b64encode(b"s3cret").decode()
    app = m.Container(
        name="app",
        image="busybox",
        command=["sleep", "3600"],
        ports=[m.ContainerPort(port=8080)],
        environment_variables=[
            m.EnvironmentVariable(name="PLAIN", value="p"),
            m.EnvironmentVariable(name="HIDDEN", secure_value="never-returned"),
        ],
        resources=m.ResourceRequirements(requests=m.ResourceRequests(cpu=cpu, memory_in_gb=memory)),
        volume_mounts=[m.VolumeMount(name="work", mount_path="/work"), m.VolumeMount(name="creds", mount_path="/creds", read_only=True)],
        readiness_probe=m.ContainerProbe(exec_property=m.ContainerExec(command=["true"]), period_seconds=5),
    )
    sidecar = m.Container(
        name="cat",
        image="busybox",
        command=["cat"],
        resources=m.ResourceRequirements(requests=m.ResourceRequests(cpu=0.25, memory_in_gb=0.5)),
        volume_mounts=[m.VolumeMount(name="work", mount_path="/work")],
    )
    init = m.InitContainerDefinition(name="setup", image="busybox", command=["true"], environment_variables=[m.EnvironmentVariable(name="MOCKCLOUD_RUN_MS", value="0")], volume_mounts=[m.VolumeMount(name="work", mount_path="/work")])
    return m.ContainerGroup(
        location=LOCATION,
        tags={"pod-uid": "uid-1" + name_suffix, "namespace": "default"},
        containers=[app, sidecar],
        init_containers=[init],
        os_type="Linux",
        restart_policy="Never",
        volumes=[m.Volume(name="work", empty_dir={}), m.Volume(name="creds", secret={"token": secret_file})],
        dns_config=m.DnsConfiguration(name_servers=["10.0.0.10"], search_domains="default.svc.cluster.local svc.cluster.local", options="ndots:5"),
        ip_address=m.IpAddress(type="Private", ports=[m.Port(port=8080)]),
    )


def socket_session(answer, send=None, until=None):
    """Open the socket, send the password, then `send`; read text until `until` shows up."""
    ws = websocket.create_connection(answer.web_socket_uri, sslopt={"ca_certs": CA}, timeout=20)
    ws.send(answer.password)
    if send is not None:
        ws.send(send)
    seen = ""
    deadline = time.time() + 20
    while until is not None and until not in seen and time.time() < deadline:
        data = ws.recv()
        seen += data if isinstance(data, str) else data.decode()
    ws.close()
    return seen


def wait_state(c, name, state):
    for _ in range(100):
        g = c.container_groups.get(RG, name)
        if g.instance_view and g.instance_view.state == state:
            return g
        time.sleep(0.2)
    raise SystemExit(f"FAILED: {name} never got to {state} (last {g.instance_view.state if g.instance_view else None})")


cred = ClientSecretCredential(TENANT, CLIENT_ID, SECRET, **credential_kwargs())
token = cred.get_token(SCOPE)
check(token.token and token.expires_on > time.time(), "a token from the face's Azure AD endpoint")
ok("ClientSecretCredential token")

c = client(cred)
created = c.container_groups.begin_create_or_update(RG, "g1", group()).result()
check(created.provisioning_state == "Succeeded", f"provisioning state {created.provisioning_state}")
check(created.id.endswith("/resourceGroups/vk-rg/providers/Microsoft.ContainerInstance/containerGroups/g1"), created.id)
ok("begin_create_or_update")

g = wait_state(c, "g1", "Running")
app = next(x for x in g.containers if x.name == "app")
check(app.instance_view.current_state.state == "Running", f"app state {app.instance_view.current_state.state}")
check(app.instance_view.current_state.start_time is not None, "a start time")
check([e.name for e in app.instance_view.events][:4] == ["Pulling", "Pulled", "Created", "Started"], "container events")
hidden = next(e for e in app.environment_variables if e.name == "HIDDEN")
check(hidden.secure_value is None and hidden.value is None, "a secure value is never returned")
init = g.init_containers[0]
check(init.instance_view.current_state.state == "Terminated" and init.instance_view.current_state.exit_code == 0, "the init container ran first")
check(g.ip_address.ip, "an IP address")
check(g.dns_config.options == "ndots:5", "the DNS config")
ok("get")

# An identical PUT is idempotent: the same group, 200.
again = c.container_groups.begin_create_or_update(RG, "g1", group()).result()
check(again.id == created.id, "the same group again")
ok("begin_create_or_update again")

for n in ("g2", "g3"):
    c.container_groups.begin_create_or_update(RG, n, group(name_suffix=n)).result()
names = sorted(x.name for x in c.container_groups.list_by_resource_group(RG))
check(names == ["g1", "g2", "g3"], f"list_by_resource_group across pages: {names}")
ok("list_by_resource_group")
names = sorted(x.name for x in c.container_groups.list())
check(names == ["g1", "g2", "g3"], f"list: {names}")
ok("list")

patched = c.container_groups.update(RG, "g1", m.Resource(tags={"pod-uid": "uid-1", "extra": "x"}))
check(patched.tags.get("extra") == "x", "tags patched")
ok("update (tags)")

time.sleep(1.2)
logs = c.containers.list_logs(RG, "g1", "app", tail=2, timestamps=True)
lines = logs.content.strip().splitlines()
check(1 <= len(lines) <= 2, f"tail=2 gives at most two lines: {lines}")
check(lines[0][:4].isdigit() and "T" in lines[0].split(" ")[0], f"timestamps: {lines[0]}")
ok("list_logs")

answer = c.containers.execute_command(RG, "g1", "cat", m.ContainerExecRequest(command="cat", terminal_size=m.ContainerExecRequestTerminalSize(rows=24, cols=80)))
check(answer.web_socket_uri.startswith("wss://") and answer.password, "exec answer")
out = socket_session(answer, send="hello from python\n", until="hello from python")
check("hello from python" in out, f"exec output: {out!r}")
ok("execute_command")

answer = c.containers.execute_command(RG, "g1", "cat", m.ContainerExecRequest(command="cat"))
ws = websocket.create_connection(answer.web_socket_uri, sslopt={"ca_certs": CA}, timeout=10)
ws.send("wrong password")
try:
    data = ws.recv()
    closed = data == "" or ws.connected is False
except websocket.WebSocketConnectionClosedException:
    closed = True
check(closed, "a wrong password closes the socket")
ok("exec wrong password")

answer = c.containers.attach(RG, "g1", "app")
out = socket_session(answer, until="app:")
check("app:" in out, f"attach output: {out!r}")
ok("attach")

c.container_groups.begin_restart(RG, "g1").result()
wait_state(c, "g1", "Running")
ok("begin_restart")

c.container_groups.stop(RG, "g2")
wait_state(c, "g2", "Stopped")
c.container_groups.begin_start(RG, "g2").result()
wait_state(c, "g2", "Running")
ok("stop and begin_start")

usages = list(c.location.list_usage(LOCATION))
groups_usage = next(u for u in usages if u.name.value == "ContainerGroups")
check(groups_usage.current_value == 3 and groups_usage.limit >= 3, f"usage {groups_usage}")
caps = list(c.location.list_capabilities(LOCATION))
check(caps and caps[0].capabilities.max_cpu == 4, "capabilities")
ok("usages and capabilities")

e = fails_with("ResourceNotFound", lambda: c.container_groups.get(RG, "nope"), "a missing group")
check(isinstance(e, ResourceNotFoundError), "404 maps to ResourceNotFoundError")
fails_with("ServiceUnavailable", lambda: c.container_groups.begin_create_or_update(RG, "big", group(cpu=5)).result(), "5 vCPU")
fails_with("InvalidMemoryRequest", lambda: c.container_groups.begin_create_or_update(RG, "odd", group(memory=0.15)).result(), "0.15 GB")
fails_with("InvalidContainerGroupName", lambda: c.container_groups.begin_create_or_update(RG, "Bad_Name", group()).result(), "a bad name")
bad_limits = group()
bad_limits.containers[0].resources.limits = m.ResourceLimits(cpu=2)
fails_with("ContainerLimitGreaterThanContainerGroupTotalRequest", lambda: c.container_groups.begin_create_or_update(RG, "lim", bad_limits).result(), "a limit over the group's request")
ok("bad requests")

try:
    ClientSecretCredential(TENANT, CLIENT_ID, "wrong", **credential_kwargs()).get_token(SCOPE)
    raise SystemExit("FAILED: a wrong secret got a token")
except ClientAuthenticationError as e:
    check("AADSTS7000215" in str(e), f"wrong secret: {e}")
ok("wrong secret")

wi = WorkloadIdentityCredential(tenant_id=TENANT, client_id=FED_CLIENT, token_file_path=FED_FILE, **credential_kwargs())
check(client(wi).container_groups.get(RG, "g1").name == "g1", "a workload identity reads")
ok("WorkloadIdentityCredential")

try:
    WorkloadIdentityCredential(tenant_id=TENANT, client_id=FED_CLIENT, token_file_path=BAD_FED_FILE, **credential_kwargs()).get_token(SCOPE)
    raise SystemExit("FAILED: an untrusted federated token got a token")
except ClientAuthenticationError as e:
    check("AADSTS70021" in str(e), f"untrusted federated token: {e}")
ok("WorkloadIdentityCredential untrusted")

os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = ENDPOINT
mi = ManagedIdentityCredential(client_id=MI_CLIENT, connection_verify=CA)
check(client(mi).container_groups.get(RG, "g1").name == "g1", "a managed identity reads")
ok("ManagedIdentityCredential (IMDS)")

for n in ("g1", "g2", "g3"):
    c.container_groups.begin_delete(RG, n).result()
fails_with("ResourceNotFound", lambda: c.container_groups.get(RG, "g1"), "a deleted group")
check(list(c.container_groups.list()) == [], "nothing left")
ok("begin_delete")
