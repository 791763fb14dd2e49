"""Drive `vk-cloud serve` with Alibaba's official ECI SDKs, as their users call them.

Usage: eci_sdk.py ENDPOINT(host:port) KEY_ID SECRET. Prints one `ok <step>` line per check
and exits non-zero (with the reason) at the first one that fails.

The current SDK (alibabacloud-eci20180808, ACS3-HMAC-SHA256) calls every action the eci
provider uses and the ones the simulator answers besides; the older SDK (aliyun-python-sdk-eci,
HMAC-SHA1) calls them again. Each answer must parse into the current SDK's models, and the
Describe answers must carry every field of those models that ECI always sends (`walk`).
"""
import base64
import inspect
import json
import re
import sys
import time

from alibabacloud_eci20180808 import models as eci
from alibabacloud_eci20180808.client import Client
from alibabacloud_tea_openapi import models as openapi
from Tea.model import TeaModel

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


def fails_with(code, call, what):
    """`call` raises the SDK's error carrying the service's `code`."""
    try:
        call()
    except SystemExit:
        raise
    except Exception as e:  # the SDK's ClientException / ServerException
        got = getattr(e, "code", None) or (e.get_error_code() if hasattr(e, "get_error_code") else None)
        check(got == code, f"{what}: expected {code}, got {e!r}")
        return e
    raise SystemExit(f"FAILED: {what}: no error, expected {code}")


# --- Every field of a model, generically ------------------------------------------------------

def wire_names(cls):
    """attribute -> the key the service sends, read from the model's own to_map."""
    src = inspect.getsource(cls.to_map)
    names = dict(re.findall(r"if self\.(\w+) is not None:\s*\n\s*result\['([^']+)'\]", src))
    # Lists: `result['Key'] = []` comes before the test of the attribute.
    names.update((a, k) for k, a in re.findall(
        r"result\['([^']+)'\] = \[\]\s*\n\s*if self\.(\w+) is not None:", src))
    return names


# Fields of the SDK's models that ECI leaves out of these answers, and why. A path is
# `Model.Key` with the Describe model's class name shortened to what follows `ResponseBody`.
ABSENT = {
    # Price: ECI reports a discount for spot instances from its price list, which the
    # simulator does not have.
    "ContainerGroups.Discount",
    # Only for instances placed in a tenant's network by ACK Serverless, never through
    # CreateContainerGroup.
    "ContainerGroups.TenantEniInstanceId", "ContainerGroups.TenantEniIp",
    "ContainerGroups.TenantSecurityGroupId", "ContainerGroups.TenantVSwitchId",
    # Only when the group was created with `ComputeCategory`.
    "ContainerGroups.ComputeCategory",
    # Only when the group was created with sysctls / extra ephemeral storage.
    "ContainerGroups.EciSecurityContext", "ContainerGroups.EphemeralStorage",
    "ContainerGroupsContainers.SecurityContext", "ContainerGroupsInitContainers.SecurityContext",
    # A variable with a value has no ValueFrom (the simulator takes no FieldRef variables).
    "ContainerGroupsContainersEnvironmentVars.ValueFrom",
    "ContainerGroupsInitContainersEnvironmentVars.ValueFrom",
    # A probe has one check of three.
    "ContainerGroupsContainersLivenessProbe.Execs", "ContainerGroupsContainersLivenessProbe.HttpGet",
    "ContainerGroupsContainersLivenessProbe.TcpSocket",
    "ContainerGroupsContainersReadinessProbe.Execs",
    "ContainerGroupsContainersReadinessProbe.HttpGet",
    "ContainerGroupsContainersReadinessProbe.TcpSocket",
    # CreateContainerGroup's probes take no host: the check goes to the instance's address.
    "ContainerGroupsContainersLivenessProbeTcpSocket.Host",
    "ContainerGroupsContainersReadinessProbeTcpSocket.Host",
    # A volume carries the details of its own type only; disks, FlexVolumes and NFS are not
    # offered by the simulator.
    "ContainerGroupsVolumes.ConfigFileVolumeConfigFileToPaths",
    "ContainerGroupsVolumes.EmptyDirVolumeMedium", "ContainerGroupsVolumes.EmptyDirVolumeSizeLimit",
    "ContainerGroupsVolumes.DiskVolumeDiskId", "ContainerGroupsVolumes.DiskVolumeFsType",
    "ContainerGroupsVolumes.FlexVolumeDriver", "ContainerGroupsVolumes.FlexVolumeFsType",
    "ContainerGroupsVolumes.FlexVolumeOptions", "ContainerGroupsVolumes.NFSVolumePath",
    "ContainerGroupsVolumes.NFSVolumeReadOnly", "ContainerGroupsVolumes.NFSVolumeServer",
    # Exit code and signal belong to a terminated run only.
    "ContainerGroupsContainersCurrentState.ExitCode", "ContainerGroupsContainersCurrentState.Signal",
    "ContainerGroupsContainersPreviousState.ExitCode", "ContainerGroupsContainersPreviousState.Signal",
    "ContainerGroupsInitContainersCurrentState.Signal",
    "ContainerGroupsInitContainersPreviousState.ExitCode",
    "ContainerGroupsInitContainersPreviousState.Signal",
    "DataPodStatusContainerStatusesStateTerminated.Signal",
    "DataPodStatusContainerStatusesLastStateTerminated.Signal",
    # Image caches: a flash snapshot only with `Flash`, the elimination strategy only for
    # automatically created caches with one set, a resource group only when given; the
    # simulator offers none of the three.
    "ImageCaches.FlashSnapshotId", "ImageCaches.EliminationStrategy",
    "ImageCaches.ResourceGroupId",
}
# Kubernetes' container state: exactly one of these is set (LastState: at most one).
ONE_OF = {"running", "terminated", "waiting"}


def walk(obj, raw, prefix, missing):
    """Every field of a parsed answer that the service did not send and that is not known to
    be absent. With the raw JSON (`raw`), a key's presence is checked there (the models turn
    a missing list into an empty one); without it, a field is missing when it parsed as None."""
    cls = type(obj)
    name = cls.__name__.split("ResponseBody", 1)[-1]
    names = wire_names(cls)
    attrs = {a: v for a, v in vars(obj).items() if a in names}

    def present(attr):
        return names[attr] in raw if raw is not None else attrs[attr] is not None

    if set(attrs) and set(attrs) <= ONE_OF:
        set_ = [a for a in attrs if present(a)]
        check(len(set_) <= 1 and (len(set_) == 1 or name.endswith("LastState")),
              f"{prefix}: one state expected, got {set_}")
        attrs = {a: v for a, v in attrs.items() if a in set_}
    for attr, value in attrs.items():
        key = names[attr]
        sub = raw.get(key) if raw is not None else None
        if not present(attr):
            if f"{name}.{key}" not in ABSENT:
                missing.append(f"{prefix}.{key}")
        elif isinstance(value, TeaModel):
            walk(value, sub, f"{prefix}.{key}", missing)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, TeaModel):
                    walk(item, sub[i] if sub is not None else None, f"{prefix}.{key}[{i}]",
                         missing)


def complete(body, what, raw=None):
    missing = []
    walk(body, raw, what, missing)
    check(not missing, f"{what}: fields ECI always sends are missing: {missing}")


# --- The current SDK, ACS3-HMAC-SHA256 --------------------------------------------------------

sdk = client(SECRET)
C = eci.CreateContainerGroupRequestContainer


def group_request(name, **over):
    """A group that uses every field the simulator echoes."""
    args = dict(
        region_id=REGION, container_group_name=name, restart_policy="Always",
        cpu=1.5, memory=3.0, zone_id=f"{REGION}-b", v_switch_id="vsw-conformance",
        security_group_id="sg-conformance", ram_role_name="builder",
        spot_strategy="SpotWithPriceLimit", spot_price_limit=0.25, auto_create_eip=True,
        ipv_6address_count=1, resource_group_id="rg-conformance", compute_category=["economy"],
        dns_config=eci.CreateContainerGroupRequestDnsConfig(
            name_server=["10.0.0.10"], search=["default.svc.cluster.local"],
            option=[eci.CreateContainerGroupRequestDnsConfigOption(name="ndots", value="5")]),
        host_aliase=[eci.CreateContainerGroupRequestHostAliase(ip="10.0.0.1",
                                                               hostname=["jenkins"])],
        volume=[
            eci.CreateContainerGroupRequestVolume(
                name="ws", type="EmptyDirVolume",
                empty_dir_volume=eci.CreateContainerGroupRequestVolumeEmptyDirVolume(
                    medium="", size_limit="1Gi")),
            eci.CreateContainerGroupRequestVolume(
                name="cfg", type="ConfigFileVolume",
                config_file_volume=eci.CreateContainerGroupRequestVolumeConfigFileVolume(
                    config_file_to_path=[
                        eci.CreateContainerGroupRequestVolumeConfigFileVolumeConfigFileToPath(
                            path="app.conf", content=base64.b64encode(b"a=1\n").decode())])),
        ],
        init_container=[eci.CreateContainerGroupRequestInitContainer(
            name="init", image="busybox:1.36", command=["true"], cpu=0.5, memory=1.0,
            environment_var=[eci.CreateContainerGroupRequestInitContainerEnvironmentVar(
                key="MOCKCLOUD_RUN_MS", value="10")],
            port=[eci.CreateContainerGroupRequestInitContainerPort(port=81, protocol="TCP")],
            volume_mount=[eci.CreateContainerGroupRequestInitContainerVolumeMount(
                name="ws", mount_path="/ws")])],
        container=[C(
            name="main", image="busybox:1.36", command=["sleep"], arg=["3600"], cpu=1.0,
            memory=2.0, gpu=0, working_dir="/ws", image_pull_policy="IfNotPresent",
            stdin=True, tty=True, stdin_once=False,
            environment_var=[eci.CreateContainerGroupRequestContainerEnvironmentVar(
                key="MOCKCLOUD_RUN_MS", value="forever")],
            port=[eci.CreateContainerGroupRequestContainerPort(port=8080, protocol="TCP")],
            # ReadOnly left unset on purpose: the SDK leaves it out, ECI takes false.
            volume_mount=[
                eci.CreateContainerGroupRequestContainerVolumeMount(name="ws", mount_path="/ws"),
                eci.CreateContainerGroupRequestContainerVolumeMount(
                    name="cfg", mount_path="/etc/app", read_only=True)],
            liveness_probe=eci.CreateContainerGroupRequestContainerLivenessProbe(
                exec=eci.CreateContainerGroupRequestContainerLivenessProbeExec(command=["true"]),
                period_seconds=5),
            readiness_probe=eci.CreateContainerGroupRequestContainerReadinessProbe(
                tcp_socket=eci.CreateContainerGroupRequestContainerReadinessProbeTcpSocket(
                    port=8080)))],
        tag=[eci.CreateContainerGroupRequestTag(key="vk-conformance", value="yes")])
    args.update(over)
    return eci.CreateContainerGroupRequest(**args)


def describe(ids, **filters):
    return sdk.describe_container_groups(eci.DescribeContainerGroupsRequest(
        region_id=REGION, container_group_ids=json.dumps(ids), **filters)).body


def wait_status(group_id, wanted):
    for _ in range(200):
        groups = describe([group_id]).container_groups
        if groups and groups[0].status == wanted:
            return groups[0]
        time.sleep(0.05)
    raise SystemExit(f"FAILED: {group_id} never {wanted}: {describe([group_id]).to_map()}")


# DryRun: every check, no group; the answer is ECI's DryRunOperation.
fails_with("DryRunOperation", lambda: sdk.create_container_group(
    group_request("sdk-dry-run", dry_run=True)), "DryRun")
check(not describe([], container_group_name="sdk-dry-run").container_groups, "DryRun made a group")
fails_with("InvalidParameter", lambda: sdk.create_container_group(
    group_request("sdk-dry-run", dry_run=True, spot_strategy="Cheap")), "DryRun with a bad value")
ok("CreateContainerGroup DryRun")

create = sdk.create_container_group(group_request("sdk-conformance"))
check(create.status_code == 200, "create status")
body = roundtrip(eci.CreateContainerGroupResponseBody, create.body)
group_id = create.body.container_group_id
check(group_id and create.body.request_id, f"create answer {body}")
ok("CreateContainerGroup")

g = wait_status(group_id, "Running")
described = describe([group_id])
roundtrip(eci.DescribeContainerGroupsResponseBody, described)
complete(described, "DescribeContainerGroups")
check(g.container_group_id == group_id and g.container_group_name == "sdk-conformance", "ids")
check(g.region_id == REGION and g.zone_id == f"{REGION}-b" and g.creation_time, "placement")
# 1.5 vCPU / 3 GiB is billed as the next specification up.
check(g.cpu == 2.0 and g.memory == 4.0 and g.instance_type == "2.0-4.0Gi",
      f"sizes: {g.cpu} {g.memory} {g.instance_type}")
check(g.v_switch_id == "vsw-conformance" and g.security_group_id == "sg-conformance"
      and g.vpc_id.startswith("vpc-") and g.eni_instance_id.startswith("eni-"), "network")
check(g.intranet_ip and g.internet_ip and ":" in g.ipv_6address, "addresses")
check(g.ram_role_name == "builder" and g.spot_strategy == "SpotWithPriceLimit"
      and g.spot_price_limit == 0.25 and g.resource_group_id == "rg-conformance"
      and g.compute_category == "economy", "echoed params")
check(g.dns_config.name_servers == ["10.0.0.10"] and g.host_aliases[0].hostnames == ["jenkins"],
      "names")
check(any(t.key == "vk-conformance" and t.value == "yes" for t in g.tags), "tags")
c = g.containers[0]
check(c.name == "main" and c.image == "busybox:1.36" and c.commands == ["sleep"]
      and c.args == ["3600"], f"container: {c.to_map()}")
check(c.stdin and c.tty and not c.stdin_once and c.working_dir == "/ws", "terminal settings")
check(c.current_state.state == "Running" and c.current_state.start_time, "container state")
check(c.volume_mounts[0].read_only is False and c.volume_mounts[1].read_only is True, "mounts")
check(c.readiness_probe.tcp_socket.port == 8080 and c.liveness_probe.execs == ["true"]
      and c.liveness_probe.period_seconds == 5, f"probes: {c.to_map()}")
check(g.init_containers[0].command == ["true"], f"init: {g.init_containers[0].to_map()}")
check({v.type for v in g.volumes} == {"EmptyDirVolume", "ConfigFileVolume"}, "volumes")
check(g.events and described.total_count == 1, "events and total count")
ok("DescribeContainerGroups")

# Filters: zone, vSwitch, security group; WithEvent=false leaves the events out.
check([x.container_group_id for x in describe([], zone_id=f"{REGION}-b").container_groups]
      == [group_id], "ZoneId filter")
check(not describe([], zone_id=f"{REGION}-c").container_groups, "ZoneId filter (other zone)")
check(not describe([], v_switch_id="vsw-other").container_groups, "VSwitchId filter")
check(not describe([], security_group_id="sg-other").container_groups, "SecurityGroupId filter")
check(not describe([], compute_category="general").container_groups, "ComputeCategory filter")
check(describe([], resource_group_id="rg-conformance").container_groups, "ResourceGroupId filter")
# The model turns a missing list into an empty one.
check(g.events and not describe([group_id], with_event=False).container_groups[0].events,
      "WithEvent")
ok("DescribeContainerGroups filters")

status = sdk.describe_container_group_status(eci.DescribeContainerGroupStatusRequest(
    region_id=REGION, container_group_ids=json.dumps([group_id]), zone_id=f"{REGION}-b"))
roundtrip(eci.DescribeContainerGroupStatusResponseBody, status.body)
complete(status.body, "DescribeContainerGroupStatus")
data = status.body.data
check(len(data) == 1 and data[0].container_group_id == group_id, f"status: {status.body.to_map()}")
pod = data[0].pod_status
check(pod.phase == "Running" and pod.host_ip == pod.pod_ip and pod.pod_ips[0].ip == pod.pod_ip,
      f"pod status: {data[0].to_map()}")
check({x.type for x in pod.conditions} >= {"PodScheduled", "Ready"}, "conditions")
check(pod.container_statuses[0].name == "main", "container statuses")
ok("DescribeContainerGroupStatus")

# The same SDK told to sign the old way (`signature_algorithm="v2"`: HMAC-SHA1 parameters).
v2 = client(SECRET, signature_algorithm="v2").describe_container_group_status(
    eci.DescribeContainerGroupStatusRequest(region_id=REGION,
                                            container_group_ids=json.dumps([group_id])))
check(v2.body.data[0].container_group_id == group_id, f"v2: {v2.body.to_map()}")
ok("DescribeContainerGroupStatus (v2 signature)")

run = sdk.exec_container_command(eci.ExecContainerCommandRequest(
    region_id=REGION, container_group_id=group_id, container_name="main",
    command=json.dumps(["echo", "hello", "sdk"]), sync=True))
roundtrip(eci.ExecContainerCommandResponseBody, run.body)
check(run.body.sync_response == "hello sdk\n", f"exec output: {run.body.to_map()}")
ok("ExecContainerCommand")

log = sdk.describe_container_log(eci.DescribeContainerLogRequest(
    region_id=REGION, container_group_id=group_id, container_name="main", tail=10))
roundtrip(eci.DescribeContainerLogResponseBody, log.body)
check(log.body.container_name == "main" and log.body.content is not None, "log")
ok("DescribeContainerLog")

events = sdk.describe_container_group_events(eci.DescribeContainerGroupEventsRequest(
    region_id=REGION, container_group_ids=json.dumps([group_id])))
roundtrip(eci.DescribeContainerGroupEventsResponseBody, events.body)
complete(events.body, "DescribeContainerGroupEvents")
check(events.body.data[0].events[0].reason == "Created", f"events: {events.body.to_map()}")
fails_with("InvalidParameter", lambda: sdk.describe_container_group_events(
    eci.DescribeContainerGroupEventsRequest(region_id=REGION, event_source="Nobody")),
    "events from an unknown source")
ok("DescribeContainerGroupEvents")

multi = sdk.describe_multi_container_group_metric(eci.DescribeMultiContainerGroupMetricRequest(
    region_id=REGION, container_group_ids=json.dumps([group_id])))
roundtrip(eci.DescribeMultiContainerGroupMetricResponseBody, multi.body)
check(multi.body.monitor_datas[0].container_group_id == group_id, "multi metric")
metric = sdk.describe_container_group_metric(eci.DescribeContainerGroupMetricRequest(
    region_id=REGION, container_group_id=group_id))
roundtrip(eci.DescribeContainerGroupMetricResponseBody, metric.body)
complete(metric.body, "DescribeContainerGroupMetric")
check(metric.body.container_group_id == group_id and metric.body.records[0].cpu.limit == 2000,
      f"metric: {metric.body.to_map()}")
fails_with("InvalidContainerGroup.NotFound", lambda: sdk.describe_container_group_metric(
    eci.DescribeContainerGroupMetricRequest(region_id=REGION, container_group_id="eci-none")),
    "metric of an unknown group")
ok("DescribeContainerGroupMetric")

regions = sdk.describe_regions(eci.DescribeRegionsRequest(region_id=REGION))
roundtrip(eci.DescribeRegionsResponseBody, regions.body)
complete(regions.body, "DescribeRegions")
check(regions.body.regions[0].region_id == REGION and regions.body.regions[0].zones, "regions")
ok("DescribeRegions")

update = sdk.update_container_group(eci.UpdateContainerGroupRequest(
    region_id=REGION, container_group_id=group_id, volume=[eci.UpdateContainerGroupRequestVolume(
        name="cfg", type="ConfigFileVolume",
        config_file_volume=eci.UpdateContainerGroupRequestVolumeConfigFileVolume(
            config_file_to_path=[
                eci.UpdateContainerGroupRequestVolumeConfigFileVolumeConfigFileToPath(
                    path="app.conf", content=base64.b64encode(b"a=2\n").decode())]))]))
roundtrip(eci.UpdateContainerGroupResponseBody, update.body)
ok("UpdateContainerGroup")

# Restart: Running and Pending groups only.
restart = sdk.restart_container_group(eci.RestartContainerGroupRequest(
    region_id=REGION, container_group_id=group_id))
roundtrip(eci.RestartContainerGroupResponseBody, restart.body)
wait_status(group_id, "Running")
# An image the simulator cannot pull keeps its group Pending.
stuck = sdk.create_container_group(eci.CreateContainerGroupRequest(
    region_id=REGION, container_group_name="sdk-pending",
    container=[C(name="main", image="example.com/missing:1")])).body.container_group_id
wait_status(stuck, "Pending")
sdk.restart_container_group(eci.RestartContainerGroupRequest(
    region_id=REGION, container_group_id=stuck))
check(describe([stuck]).container_groups[0].status == "Restarting", "restart while Pending")
done = sdk.create_container_group(eci.CreateContainerGroupRequest(
    region_id=REGION, container_group_name="sdk-done", restart_policy="Never",
    container=[C(name="main", image="busybox", environment_var=[
        eci.CreateContainerGroupRequestContainerEnvironmentVar(key="MOCKCLOUD_RUN_MS",
                                                               value="10")])])
).body.container_group_id
wait_status(done, "Succeeded")
fails_with("IncorrectStatus", lambda: sdk.restart_container_group(
    eci.RestartContainerGroupRequest(region_id=REGION, container_group_id=done)),
    "restart of a Succeeded group")
ok("RestartContainerGroup")

# Bad parameters: the service's code, naming the parameter.
e = fails_with("InvalidParameter", lambda: sdk.create_container_group(
    group_request("Not_A_Name")), "a bad group name")
check("ContainerGroupName" in str(e), f"names the parameter: {e}")
fails_with("MissingParameter", lambda: sdk.create_container_group(eci.CreateContainerGroupRequest(
    region_id=REGION, container_group_name="sdk-empty")), "no container")
fails_with("InvalidParameter", lambda: sdk.create_container_group(
    group_request("sdk-bad-ipv6", ipv_6address_count=2)), "two IPv6 addresses")
fails_with("InvalidContainerGroup.NotFound", lambda: sdk.delete_container_group(
    eci.DeleteContainerGroupRequest(region_id=REGION, container_group_id="eci-none")),
    "delete an unknown group")
ok("bad parameters")

# A wrong secret: the service's own code reaches the SDK's exception.
fails_with("SignatureDoesNotMatch", lambda: client("wrong-secret").describe_container_groups(
    eci.DescribeContainerGroupsRequest(region_id=REGION)), "wrong secret (ACS3)")
ok("wrong secret (ACS3)")
fails_with("SignatureDoesNotMatch", lambda: client(
    "wrong-secret", signature_algorithm="v2").describe_container_groups(
    eci.DescribeContainerGroupsRequest(region_id=REGION)), "wrong secret (HMAC-SHA1, current SDK)")
ok("wrong secret (HMAC-SHA1, current SDK)")

# --- The older SDK (aliyun-python-sdk-core): the RPC signature 1.0, HMAC-SHA1 -----------------
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from aliyunsdkeci.request.v20180808 import (
    CreateContainerGroupRequest as OldCreate, DeleteContainerGroupsRequest as OldDeleteMany,
    DescribeContainerGroupEventsRequest as OldEvents,
    DescribeContainerGroupMetricRequest as OldMetric,
    DescribeContainerGroupsRequest as OldDescribe,
    DescribeContainerGroupStatusRequest as OldStatus, DescribeContainerLogRequest as OldLog,
    DescribeMultiContainerGroupMetricRequest as OldMulti, DescribeRegionsRequest as OldRegions,
    ExecContainerCommandRequest as OldExec, RestartContainerGroupRequest as OldRestart)


def old_call(req, secret=SECRET, model=None):
    req.set_endpoint(ENDPOINT) if hasattr(req, "set_endpoint") else None
    req.set_protocol_type("http")
    answer = json.loads(AcsClient(KEY_ID, secret, REGION).do_action_with_exception(req))
    if model is not None:
        roundtrip(model, model().from_map(answer))
    return answer


def old(module, **params):
    req = getattr(module, module.__name__.rsplit(".", 1)[-1])()
    for k, v in params.items():
        getattr(req, f"set_{k}")(v)
    return req


ids = json.dumps([group_id])

def raw_complete(req, model, what):
    """The raw JSON of an answer: every key ECI always sends is there."""
    answer = old_call(req, model=model)
    complete(model().from_map(answer), what, raw=answer)
    return answer


answer = raw_complete(old(OldDescribe, ContainerGroupIds=ids),
                      eci.DescribeContainerGroupsResponseBody, "DescribeContainerGroups (SHA1)")
check(answer["ContainerGroups"][0]["ContainerGroupId"] == group_id, f"old SDK: {answer}")
raw_complete(old(OldStatus, ContainerGroupIds=ids), eci.DescribeContainerGroupStatusResponseBody,
             "DescribeContainerGroupStatus (SHA1)")
old_call(old(OldLog, ContainerGroupId=group_id, ContainerName="main"),
         model=eci.DescribeContainerLogResponseBody)
out = old_call(old(OldExec, ContainerGroupId=group_id, ContainerName="main",
                   Command=json.dumps(["echo", "old"]), Sync=True))
check(out["SyncResponse"] == "old\n", f"old exec: {out}")
old_call(old(OldMulti, ContainerGroupIds=ids),
         model=eci.DescribeMultiContainerGroupMetricResponseBody)
raw_complete(old(OldMetric, ContainerGroupId=group_id),
             eci.DescribeContainerGroupMetricResponseBody, "DescribeContainerGroupMetric (SHA1)")
raw_complete(old(OldEvents, ContainerGroupIds=ids), eci.DescribeContainerGroupEventsResponseBody,
             "DescribeContainerGroupEvents (SHA1)")
raw_complete(old(OldRegions), eci.DescribeRegionsResponseBody, "DescribeRegions (SHA1)")
old_call(old(OldRestart, ContainerGroupId=group_id), model=eci.RestartContainerGroupResponseBody)
ok("every action (HMAC-SHA1)")

# The older SDK sends a mount's unset ReadOnly as `None`: ECI takes it as false. A bad value is
# refused, naming the mount's own parameter.
mount = {"Name": "ws", "MountPath": "/ws"}
containers = [{"Name": "main", "Image": "busybox", "VolumeMounts": [mount]}]
volumes = [{"Name": "ws", "Type": "EmptyDirVolume"}]
made = old_call(old(OldCreate, ContainerGroupName="sdk-old", Containers=containers,
                    Volumes=volumes))["ContainerGroupId"]
mounted = old_call(old(OldDescribe, ContainerGroupIds=json.dumps([made])))
check(mounted["ContainerGroups"][0]["Containers"][0]["VolumeMounts"][0]["ReadOnly"] is False,
      f"unset ReadOnly: {mounted}")
mount["ReadOnly"] = "perhaps"
e = fails_with("InvalidParameter", lambda: old_call(old(
    OldCreate, ContainerGroupName="sdk-old-bad", Containers=containers, Volumes=volumes)),
    "a bad ReadOnly")
check("Container.1.VolumeMount.1.ReadOnly" in str(e), f"names the mount's parameter: {e}")
ok("CreateContainerGroup (HMAC-SHA1)")

unknown = CommonRequest(domain=ENDPOINT, version="2018-08-08", action_name="NoSuchAction")
unknown.set_protocol_type("http")
unknown.set_method("POST")
fails_with("InvalidAction.NotFound",
           lambda: AcsClient(KEY_ID, SECRET, REGION).do_action_with_exception(unknown),
           "an unknown action")
ok("unknown action")

try:
    old_call(old(OldDescribe, ContainerGroupIds=ids), secret="wrong-secret")
    raise SystemExit("FAILED: a wrong secret was accepted (HMAC-SHA1)")
except ServerException as e:
    # The service answered SignatureDoesNotMatch; this SDK turns it into
    # InvalidAccessKeySecret only when the service's echoed string to sign equals its own.
    check(e.get_error_code() == "InvalidAccessKeySecret", f"old SDK wrong secret: {e}")
ok("wrong secret (HMAC-SHA1)")

# Batch delete (older SDK only) of two groups, then the current SDK's delete of the rest.
old_call(old(OldDeleteMany, ContainerGroupIds=json.dumps([made, stuck])))
check(not describe([made, stuck]).container_groups, "batch delete")
ok("DeleteContainerGroups")

for gone in (group_id, done):
    delete = sdk.delete_container_group(eci.DeleteContainerGroupRequest(
        region_id=REGION, container_group_id=gone))
    roundtrip(eci.DeleteContainerGroupResponseBody, delete.body)
    check(delete.body.request_id, "delete request id")
for _ in range(100):
    left = describe([group_id, done]).container_groups
    if not left:
        break
    time.sleep(0.1)
check(not left, "deleted group still listed")
ok("DeleteContainerGroup")

# Image caches, with the current SDK: create, wait for Ready, update, a group that starts from
# it, delete; each answer parses into the SDK's models.
made_cache = sdk.create_image_cache(eci.CreateImageCacheRequest(
    region_id=REGION, image_cache_name="sdk-cache", image=["golang:1.22", "busybox:1.36"],
    security_group_id="sg-sdk", v_switch_id="vsw-sdk", image_cache_size=20, retention_days=7,
    client_token="sdk-cache-token"))
roundtrip(eci.CreateImageCacheResponseBody, made_cache.body)
cache_id = made_cache.body.image_cache_id
check(cache_id.startswith("imc-") and made_cache.body.container_group_id, "cache ids")
again = sdk.create_image_cache(eci.CreateImageCacheRequest(
    region_id=REGION, image_cache_name="sdk-cache", image=["golang:1.22", "busybox:1.36"],
    security_group_id="sg-sdk", v_switch_id="vsw-sdk", image_cache_size=20, retention_days=7,
    client_token="sdk-cache-token"))
check(again.body.image_cache_id == cache_id, "CreateImageCache ClientToken")
ok("CreateImageCache")


def cache(cid):
    got = sdk.describe_image_caches(eci.DescribeImageCachesRequest(
        region_id=REGION, image_cache_id=cid))
    roundtrip(eci.DescribeImageCachesResponseBody, got.body)
    return got.body.image_caches


status = None
for _ in range(100):
    status = cache(cache_id)[0].status
    if status == "Ready":
        break
    time.sleep(0.1)
check(status == "Ready", f"image cache status {status}")
ready = cache(cache_id)[0]
check(ready.progress == "100%" and ready.image_cache_size == 20 and ready.expire_date_time,
      f"Ready cache fields: {ready.to_map()}")
complete(ready, "DescribeImageCaches")
check(sorted(ready.images) == ["busybox:1.36", "golang:1.22"], f"images {ready.images}")
ok("DescribeImageCaches")

update = sdk.update_image_cache(eci.UpdateImageCacheRequest(
    region_id=REGION, image_cache_id=cache_id, retention_days=3))
roundtrip(eci.UpdateImageCacheResponseBody, update.body)
for _ in range(100):
    if cache(cache_id)[0].status == "Ready":
        break
    time.sleep(0.1)
check(cache(cache_id)[0].expire_date_time < ready.expire_date_time,
      "UpdateImageCache: a shorter retention moves the expiry earlier")
fails_with("InvalidImageCache.NotFound", lambda: sdk.update_image_cache(
    eci.UpdateImageCacheRequest(region_id=REGION, image_cache_id="imc-none", retention_days=1)),
    "update of an unknown cache")
ok("UpdateImageCache")

hit = sdk.create_container_group(group_request("sdk-cache-hit", image_snapshot_id=cache_id))
check(hit.body.container_group_id, "group from the cache")
fails_with("InvalidImageCache.NotFound", lambda: sdk.create_container_group(
    group_request("sdk-cache-none", image_snapshot_id="imc-none")), "unknown ImageSnapshotId")
sdk.delete_container_group(eci.DeleteContainerGroupRequest(
    region_id=REGION, container_group_id=hit.body.container_group_id))
ok("CreateContainerGroup ImageSnapshotId")

gone_cache = sdk.delete_image_cache(eci.DeleteImageCacheRequest(
    region_id=REGION, image_cache_id=cache_id))
roundtrip(eci.DeleteImageCacheResponseBody, gone_cache.body)
check(not cache(cache_id), "deleted cache still listed")
ok("DeleteImageCache")
