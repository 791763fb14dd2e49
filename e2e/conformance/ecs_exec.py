"""Open an ECS exec session on `vk-cloud serve --face ecs` with AWS's own Python SDK (boto3),
as `aws ecs execute-command` does before it starts session-manager-plugin.

Usage: ecs_exec.py ENDPOINT(http://host:port) KEY_ID SECRET. Prints one `ok <step>` line per
check, then `SESSION <json>` (ExecuteCommand's session, as the CLI hands it to the plugin) and
`TARGET <ecs:cluster_task_runtimeId>`; exits non-zero (with the reason) at the first failure.
Every JSON answer must parse and name only fields the service model knows.
"""
import json
import sys
import time

import boto3
from botocore.exceptions import ClientError

ENDPOINT, KEY_ID, SECRET = sys.argv[1:4]
REGION = "us-east-1"


def ok(step):
    print("ok", step, flush=True)


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def unknown_fields(value, shape, path, found):
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for key, v in value.items():
            if key not in shape.members:
                found.append(f"{path}.{key}")
            else:
                unknown_fields(v, shape.members[key], f"{path}.{key}", found)
    elif kind == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            unknown_fields(v, shape.member, f"{path}[{i}]", found)


def strict(http_response, parsed, model, **_):
    if http_response.status_code != 200 or model.output_shape is None:
        return
    found = []
    unknown_fields(json.loads(http_response.content or b"{}"), model.output_shape, model.name, found)
    check(not found, f"{model.name}: fields the model does not know: {found}")


def fails_with(code, call, what):
    try:
        call()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        check(got == code, f"{what}: expected {code}, got {got}: {e}")
        return e.response["Error"].get("Message", "")
    raise SystemExit(f"FAILED: {what}: no error")


ecs = boto3.client("ecs", endpoint_url=ENDPOINT, region_name=REGION,
                   aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
ecs.meta.events.register("after-call", strict)

ecs.register_task_definition(
    family="exec", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
    memory="512",
    containerDefinitions=[{"name": "app", "image": "busybox:1.36", "essential": True,
                           "command": ["/bin/sh", "-c", "exec sleep 300"]}])
network = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "assignPublicIp": "DISABLED"}}
plain = ecs.run_task(cluster="default", taskDefinition="exec", launchType="FARGATE",
                     networkConfiguration=network)["tasks"][0]["taskArn"]
task = ecs.run_task(cluster="default", taskDefinition="exec", launchType="FARGATE",
                    networkConfiguration=network, enableExecuteCommand=True)["tasks"][0]
arn = task["taskArn"]
check(task["enableExecuteCommand"] is True, "RunTask shows enableExecuteCommand")
for _ in range(300):
    task = ecs.describe_tasks(cluster="default", tasks=[arn])["tasks"][0]
    if task["lastStatus"] == "RUNNING":
        break
    time.sleep(0.1)
check(task["lastStatus"] == "RUNNING", f"the task runs: {task['lastStatus']}")
ok("run_task with enableExecuteCommand")

message = fails_with("InvalidParameterException", lambda: ecs.execute_command(
    cluster="default", task=arn, container="app", command="/bin/sh", interactive=False),
    "a non-interactive ExecuteCommand")
check("Interactive" in message, message)
fails_with("InvalidParameterException", lambda: ecs.execute_command(
    cluster="default", task=plain, container="app", command="/bin/sh", interactive=True),
    "ExecuteCommand on a task without execute command")
fails_with("InvalidParameterException", lambda: ecs.execute_command(
    cluster="default", task=arn, container="nope", command="/bin/sh", interactive=True),
    "ExecuteCommand on an unknown container")
ok("execute_command refusals")

answer = ecs.execute_command(cluster="default", task=arn, container="app", command="/bin/sh",
                             interactive=True)
session = answer["session"]
check(answer["interactive"] is True and answer["containerName"] == "app", f"{answer}")
check(session["streamUrl"].startswith("ws"), f"{session}")
check(session["sessionId"] and session["tokenValue"], f"{session}")
ok("execute_command")
runtime = task["containers"][0].get("runtimeId", "")
print("SESSION", json.dumps(session), flush=True)
print("TARGET", f"ecs:default_{arn.rsplit('/', 1)[-1]}_{runtime}", flush=True)
