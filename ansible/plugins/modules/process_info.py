#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Monitoreo developers
# MIT License (see LICENSE at the root of the repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: process_info
short_description: List the processes of a host running Monitoreo
description:
  - Lists processes (C(GET /api/ps)) with the fields asked for, filtered by
    user on the gateway and by name or command line here, sorted and limited.
  - Or reads given processes by pid (C(GET /api/ps/{pid})); a pid with no
    process is left out.
  - Reads only; never changed. The key needs the C(read) scope.
version_added: 0.1.0
author: Monitoreo developers
options:
  pids:
    description:
      - Read these processes only.
    type: list
    elements: int
  user:
    description:
      - Only this user's processes (a passwd name, or a uid).
    type: str
  name:
    description:
      - Only processes with exactly this name.
    type: str
  cmdline:
    description:
      - Only processes whose command line (arguments joined by spaces) this
        regular expression finds something in.
    type: str
  fields:
    description:
      - The fields of each process (the gateway's names, e.g. C(pid),
        C(name), C(username), C(cpu_percent), C(memory_info), C(start_time));
        the gateway's default set when not given. C(pid) and C(start_time)
        are always added, and C(name) or C(cmdline) when filtered on.
    type: list
    elements: str
  sort:
    description:
      - A sort key, C(-) first for descending (C(-cpu_percent)).
    type: str
  limit:
    description:
      - At most this many processes (after sorting, before the name and
        command line filters).
    type: int
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
- name: The five busiest processes
  monitoreo.host.process_info:
    url: "{{ monitoreo_url }}"
    key_file: /etc/monitoreo-keys/{{ inventory_hostname }}
    ca_file: /etc/ssl/monitoreo-ca.pem
    fields: [pid, name, username, cpu_percent]
    sort: -cpu_percent
    limit: 5
  delegate_to: localhost
  register: top
"""

RETURN = r"""
processes:
  description: The processes, each an object of the fields asked for.
  returned: always
  type: list
  elements: dict
count:
  description: How many processes.
  returned: always
  type: int
"""

import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.monitoreo.host.plugins.module_utils.monitoreo import (
    CONNECTION_ARGS,
    CONNECTION_RULES,
    Gateway,
    MonitoreoError,
    path_segment,
)


def fields_param(p):
    if not p["fields"]:
        return None
    want = list(p["fields"])
    for f in ["pid", "start_time"] + [k for k in ("name", "cmdline") if p[k]]:
        if f not in want:
            want.append(f)
    return ",".join(want)


def main():
    spec = dict(
        CONNECTION_ARGS,
        pids=dict(type="list", elements="int"),
        user=dict(type="str"),
        name=dict(type="str"),
        cmdline=dict(type="str"),
        fields=dict(type="list", elements="str"),
        sort=dict(type="str"),
        limit=dict(type="int"),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True, **CONNECTION_RULES)
    p = module.params
    try:
        pattern = re.compile(p["cmdline"]) if p["cmdline"] else None
    except re.error as e:
        module.fail_json(msg="cmdline %r: %s" % (p["cmdline"], e))
    gw = Gateway(module)
    query = {"fields": fields_param(p)}
    try:
        if p["pids"]:
            procs = []
            for pid in p["pids"]:
                try:
                    procs.append(gw.call("GET", "/api/ps/" + path_segment(pid), query=query)["process"])
                except MonitoreoError as e:
                    if e.status != 404:
                        raise
        else:
            query.update(user=p["user"], sort=p["sort"], limit=p["limit"])
            procs = gw.call("GET", "/api/ps", query=query)["processes"]
    except MonitoreoError as e:
        module.fail_json(**e.as_result())
    if p["user"] and p["pids"]:
        procs = [x for x in procs if x.get("username") in (None, p["user"])]
    if p["name"] is not None:
        procs = [x for x in procs if x.get("name") == p["name"]]
    if pattern is not None:
        procs = [x for x in procs if pattern.search(" ".join(x.get("cmdline") or []))]
    module.exit_json(changed=False, processes=procs, count=len(procs))


if __name__ == "__main__":
    main()
