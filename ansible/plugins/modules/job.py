#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Monitoreo developers
# MIT License (see LICENSE at the root of the repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: job
short_description: Run a command on a Monitoreo host
description:
  - Starts a job (C(POST /api/jobs)); the command runs under C(/bin/sh -c)
    as the helper policy's run identity, with its limits.
  - With O(wait), waits for its end and returns its exit code, stdout,
    stderr and state; otherwise returns its id at once.
  - Always C(changed) when run (a command may do anything); use
    C(changed_when) for a command that only reads. Not run in check mode.
  - The key needs the C(exec) scope.
version_added: 0.1.0
author: Monitoreo developers
options:
  command:
    description:
      - The shell command.
    type: str
    required: true
  timeout_s:
    description:
      - Seconds the job may run before the helper kills it; the gateway's
        default when not given (the policy bounds it).
    type: int
  wait:
    description:
      - Wait for the job to end and return its output.
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait at most; the module fails if the job is still running
        then (the job goes on).
    type: int
    default: 120
  fail_on_error:
    description:
      - Fail when the job did not exit 0 (exit code, signal, timeout).
    type: bool
    default: true
extends_documentation_fragment:
  - monitoreo.host.connection
attributes:
  check_mode:
    support: partial
    details: In check mode nothing is started; the result says it would be.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Disk usage of /var
  monitoreo.host.job:
    url: "{{ monitoreo_url }}"
    key: "{{ monitoreo_key }}"
    ca_file: /etc/ssl/monitoreo-ca.pem
    command: du -sh /var
    timeout_s: 30
  delegate_to: localhost
  changed_when: false
  register: du
"""

RETURN = r"""
id:
  description: The job's id.
  returned: when started
  type: str
state:
  description: The job's state (C(running), C(exited), C(killed), C(timed_out), C(cancelled), ...).
  returned: when started
  type: str
rc:
  description: The exit code; null when the job was killed by a signal.
  returned: when waited for
  type: int
stdout:
  description: Its standard output (UTF-8, invalid bytes replaced).
  returned: when waited for
  type: str
stderr:
  description: Its standard error.
  returned: when waited for
  type: str
job:
  description: The job's record (C(GET /api/jobs/{id})).
  returned: when started
  type: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.monitoreo.host.plugins.module_utils.monitoreo import (
    CONNECTION_ARGS,
    CONNECTION_RULES,
    Gateway,
    MonitoreoError,
    path_segment,
)

RUNNING = ("starting", "running")


def main():
    spec = dict(
        CONNECTION_ARGS,
        command=dict(type="str", required=True),
        timeout_s=dict(type="int"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=120),
        fail_on_error=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True, **CONNECTION_RULES)
    p = module.params
    if module.check_mode:
        module.exit_json(changed=True, msg="not run in check mode")
    gw = Gateway(module)
    body = {"cmd": p["command"]}
    if p["timeout_s"] is not None:
        body["timeout_s"] = p["timeout_s"]
    try:
        job = gw.call("POST", "/api/jobs", body)["job"]
        path = "/api/jobs/" + path_segment(job["id"])
        deadline = time.time() + p["wait_timeout"]
        while p["wait"] and job["state"] in RUNNING and time.time() < deadline:
            wait = max(1, min(60, int(deadline - time.time())))
            job = gw.call("GET", path, query={"wait": wait})["job"]
    except MonitoreoError as e:
        module.fail_json(**e.as_result())
    result = dict(changed=True, id=job["id"], state=job["state"], job=job)
    if not p["wait"]:
        module.exit_json(**result)
    if job["state"] in RUNNING:
        result["msg"] = "job %s still running after %d s" % (job["id"], p["wait_timeout"])
        module.fail_json(**result)
    try:
        result.update(
            rc=job.get("exit_code"),
            stdout=gw.text(path + "/stdout"),
            stderr=gw.text(path + "/stderr"),
        )
    except MonitoreoError as e:
        result.update(e.as_result())
        module.fail_json(**result)
    if p["fail_on_error"] and (job["state"] != "exited" or job.get("exit_code") != 0):
        result["msg"] = "job %s ended %s (exit code %s)" % (job["id"], job["state"], job.get("exit_code"))
        module.fail_json(**result)
    # Ansible takes a non-zero rc for a failure unless told otherwise.
    result["failed"] = False
    module.exit_json(**result)


if __name__ == "__main__":
    main()
