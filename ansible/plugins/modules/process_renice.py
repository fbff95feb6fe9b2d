#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Monitoreo developers
# MIT License (see LICENSE at the root of the repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: process_renice
short_description: Renice processes through a Monitoreo gateway
description:
  - Plans the new priority on the selected processes (C(POST /api/actions/plan)),
    each target pinned by pid and start time, with the helper policy's verdict.
  - In check mode returns that plan and acts on nothing; otherwise executes it
    (C(POST /api/actions/{plan_id})) expecting the planned count, so a set of
    targets that changed in between is refused and nothing is reniced.
  - C(changed) only when some process was reniced.
  - The key needs the C(renice) scope.
version_added: 0.1.0
author: Monitoreo developers
options:
  priority:
    description:
      - The nice value to set, -20 (most favoured) to 19; lowering it below 0
        needs the policy's leave.
    type: int
    required: true
extends_documentation_fragment:
  - monitoreo.host.connection
  - monitoreo.host.connection.action
"""

EXAMPLES = r"""
- name: Lower the priority of alice's report jobs
  monitoreo.host.process_renice:
    url: "{{ monitoreo_url }}"
    key: "{{ monitoreo_key }}"
    ca_file: /etc/ssl/monitoreo-ca.pem
    match:
      name: report
      user: alice
    priority: 10
  delegate_to: localhost
"""

RETURN = r"""
plan_id:
  description: The plan's id.
  returned: always
  type: str
count:
  description: How many processes the plan targets.
  returned: always
  type: int
targets:
  description: Each target with its pid, start time, name, user and the policy's verdict and rule.
  returned: always
  type: list
  elements: dict
denied:
  description: The targets the policy refuses.
  returned: always
  type: list
  elements: dict
status:
  description: C(complete) or C(partial).
  returned: when executed
  type: str
results:
  description: Each target's outcome (reniced, gone, identity_changed, exe_changed, denied, failed).
  returned: when executed
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.monitoreo.host.plugins.module_utils.monitoreo import (
    ACTION_ARGS,
    ACTION_RULES,
    CONNECTION_ARGS,
    CONNECTION_RULES,
    plan_and_execute,
)


def main():
    spec = dict(CONNECTION_ARGS, **ACTION_ARGS)
    spec["priority"] = dict(type="int", required=True)
    module = AnsibleModule(
        argument_spec=spec,
        mutually_exclusive=CONNECTION_RULES["mutually_exclusive"] + ACTION_RULES["mutually_exclusive"],
        required_one_of=CONNECTION_RULES["required_one_of"] + ACTION_RULES["required_one_of"],
        supports_check_mode=True,
    )
    plan_and_execute(module, {"priority": module.params["priority"]})


if __name__ == "__main__":
    main()
