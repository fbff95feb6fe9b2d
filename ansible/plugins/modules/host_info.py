#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Monitoreo developers
# MIT License (see LICENSE at the root of the repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: host_info
short_description: Read a Monitoreo host's figures
description:
  - Reads C(GET /api/host) (host name, kernel, boot time, CPU, memory, swap,
    load, process counts, disks, network), psutil's meanings.
  - With O(whoami), also what the key may do (C(GET /api/whoami)), its
    scopes and the policy's signals, nice range and rules for it.
  - Reads only; never changed. The key needs the C(read) scope.
version_added: 0.1.0
author: Monitoreo developers
options:
  interval:
    description:
      - Seconds the CPU figures cover (the gateway bounds it); when not
        given, the time since the previous ask.
    type: float
  whoami:
    description:
      - Also return the key's scopes and policy.
    type: bool
    default: false
extends_documentation_fragment:
  - monitoreo.host.connection
attributes:
  check_mode:
    support: full
    details: It only reads.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Host figures
  monitoreo.host.host_info:
    url: "{{ monitoreo_url }}"
    key: "{{ monitoreo_key }}"
    ca_file: /etc/ssl/monitoreo-ca.pem
  delegate_to: localhost
  register: h
- name: Hosts short of memory
  ansible.builtin.debug:
    msg: "{{ h.host.virtual_memory.percent }}% memory used"
  when: h.host.virtual_memory.percent > 90
"""

RETURN = r"""
host:
  description: The answer of C(GET /api/host) without its C(result) member.
  returned: always
  type: dict
whoami:
  description: The key's name, scopes and policy.
  returned: when O(whoami) is true
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.monitoreo.host.plugins.module_utils.monitoreo import (
    CONNECTION_ARGS,
    CONNECTION_RULES,
    Gateway,
    MonitoreoError,
)


def main():
    spec = dict(CONNECTION_ARGS, interval=dict(type="float"), whoami=dict(type="bool", default=False))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True, **CONNECTION_RULES)
    gw = Gateway(module)
    result = dict(changed=False)
    try:
        host = gw.call("GET", "/api/host", query={"interval": module.params["interval"]})
        host.pop("result", None)
        result["host"] = host
        if module.params["whoami"]:
            me = gw.call("GET", "/api/whoami")
            me.pop("result", None)
            result["whoami"] = me
    except MonitoreoError as e:
        module.fail_json(**e.as_result())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
