"""Drive `vk-cloud serve` with Alibaba's official ECI SDKs, as their users call them.

Usage: eci_sdk.py ENDPOINT(host:port) KEY_ID SECRET. Prints one `ok <step>` line per check
and exits non-zero (with the reason) at the first one that fails.
"""
import json
import sys
import time

from alibabacloud_eci20180808 import models as eci
from alibabacloud_eci20180808.client import Client
from alibabacloud_tea_openapi import models as openapi

ENDPOINT, KEY_ID, SECRET = sys.argv[1:4]
REGION = "cn-hangzhou"


def ok(step):
    print("ok", step, flush=True)


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def client(secret, **options):
    # The SDK's defaults but for where the service is: ACS3-HMAC-SHA256, parameters in the query.
    return Client(openapi.Config(access_key_id=KEY_ID, access_key_secret=secret,
                                 endpoint=ENDPOINT, protocol="http", region_id=REGION, **options))


def roundtrip(model_class, body):
    """The answer parses into the SDK's model, and back to the same map."""
    as_map = body.to_map()
    again = model_class().from_map(as_map)
    check(again.to_map() == as_map, f"{model_class.__name__} round trip")
    return as_map


sdk = client(SECRET)

# CreateContainerGroup: one small container that keeps running.
create = sdk.create_container_group(eci.CreateContainerGroupRequest(
    region_id=REGION, container_group_name="sdk-conformance", restart_policy="Never",
    cpu=0.5, memory=1.0,
    container=[eci.CreateContainerGroupRequestContainer(
        name="main", image="busybox:1.36", command=["sleep", "3600"], cpu=0.5, memory=1.0,
        environment_var=[eci.CreateContainerGroupRequestContainerEnvironmentVar(
            key="MOCKCLOUD_RUN_MS", value="forever")])],
    tag=[eci.CreateContainerGroupRequestTag(key="vk-conformance", value="yes")]))
check(create.status_code == 200, "create status")
body = roundtrip(eci.CreateContainerGroupResponseBody, create.body)
group_id = create.body.container_group_id
check(group_id and create.body.request_id, f"create answer {body}")
ok("CreateContainerGroup")

# DescribeContainerGroups until it runs: the fields vk reads are there.
ids = json.dumps([group_id])
for _ in range(100):
    described = sdk.describe_container_groups(eci.DescribeContainerGroupsRequest(
        region_id=REGION, container_group_ids=ids))
    groups = described.body.container_groups
    check(len(groups) == 1, f"one group listed: {described.body.to_map()}")
    if groups[0].status == "Running":
        break
    time.sleep(0.1)
roundtrip(eci.DescribeContainerGroupsResponseBody, described.body)
g = groups[0]
check(g.status == "Running", f"running: {g.status}")
check(g.container_group_id == group_id and g.container_group_name == "sdk-conformance", "ids")
check(g.region_id == REGION and g.creation_time, f"region and creation time: {g.to_map()}")
check(g.cpu == 0.5 and g.memory == 1.0, f"sizes: {g.cpu} {g.memory}")
check(g.intranet_ip, "intranet ip")
check(any(t.key == "vk-conformance" and t.value == "yes" for t in g.tags), "tags")
c = g.containers[0]
check(c.name == "main" and c.image == "busybox:1.36", f"container: {c.to_map()}")
check(c.current_state.state == "Running" and c.current_state.start_time, "container state")
check(c.ready is not None and c.restart_count == 0, "ready and restarts")
check(described.body.total_count == 1, "total count")
ok("DescribeContainerGroups")

status = sdk.describe_container_group_status(eci.DescribeContainerGroupStatusRequest(
    region_id=REGION, container_group_ids=ids))
roundtrip(eci.DescribeContainerGroupStatusResponseBody, status.body)
data = status.body.data
check(len(data) == 1 and data[0].container_group_id == group_id, f"status: {status.body.to_map()}")
check(data[0].status == "Running", "status running")
pod = data[0].pod_status
check(pod and pod.phase == "Running", f"pod status: {data[0].to_map()}")
check(pod.container_statuses and pod.container_statuses[0].name == "main",
      "container statuses")
ok("DescribeContainerGroupStatus")

# The same SDK told to sign the old way (`signature_algorithm="v2"`: HMAC-SHA1 parameters).
v2 = client(SECRET, signature_algorithm="v2").describe_container_group_status(
    eci.DescribeContainerGroupStatusRequest(region_id=REGION, container_group_ids=ids))
check(v2.body.data[0].container_group_id == group_id, f"v2: {v2.body.to_map()}")
ok("DescribeContainerGroupStatus (v2 signature)")

run = sdk.exec_container_command(eci.ExecContainerCommandRequest(
    region_id=REGION, container_group_id=group_id, container_name="main",
    command=json.dumps(["echo", "hello", "sdk"]), sync=True))
roundtrip(eci.ExecContainerCommandResponseBody, run.body)
check(run.body.sync_response == "hello sdk\n", f"exec output: {run.body.to_map()}")
ok("ExecContainerCommand")

# A wrong secret: the service's own code reaches the SDK's exception.
try:
    client("wrong-secret").describe_container_groups(
        eci.DescribeContainerGroupsRequest(region_id=REGION))
    raise SystemExit("FAILED: a wrong secret was accepted")
except SystemExit:
    raise
except Exception as e:  # the SDK's ClientException
    check(getattr(e, "code", None) == "SignatureDoesNotMatch", f"wrong secret: {e!r}")
ok("wrong secret (ACS3)")

# The older SDK (aliyun-python-sdk-core): the RPC signature 1.0, HMAC-SHA1.
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkeci.request.v20180808.DescribeContainerGroupsRequest import (
    DescribeContainerGroupsRequest as OldDescribe)


def old_describe(secret):
    old = AcsClient(KEY_ID, secret, REGION)
    req = OldDescribe()
    req.set_endpoint(ENDPOINT)
    req.set_protocol_type("http")
    req.set_ContainerGroupIds(ids)
    return json.loads(old.do_action_with_exception(req))


answer = old_describe(SECRET)
check(answer["ContainerGroups"][0]["ContainerGroupId"] == group_id, f"old SDK: {answer}")
roundtrip(eci.DescribeContainerGroupsResponseBody,
          eci.DescribeContainerGroupsResponseBody().from_map(answer))
ok("DescribeContainerGroups (HMAC-SHA1)")
try:
    old_describe("wrong-secret")
    raise SystemExit("FAILED: a wrong secret was accepted (HMAC-SHA1)")
except ServerException as e:
    # The service answered SignatureDoesNotMatch; this SDK turns it into
    # InvalidAccessKeySecret only when the service's echoed string to sign equals its own.
    check(e.get_error_code() == "InvalidAccessKeySecret", f"old SDK wrong secret: {e}")
ok("wrong secret (HMAC-SHA1)")

delete = sdk.delete_container_group(eci.DeleteContainerGroupRequest(
    region_id=REGION, container_group_id=group_id))
roundtrip(eci.DeleteContainerGroupResponseBody, delete.body)
check(delete.body.request_id, "delete request id")
for _ in range(100):
    left = sdk.describe_container_groups(eci.DescribeContainerGroupsRequest(
        region_id=REGION, container_group_ids=ids)).body.container_groups
    if not left:
        break
    time.sleep(0.1)
check(not left, "deleted group still listed")
ok("DeleteContainerGroup")
