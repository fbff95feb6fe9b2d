# -*- coding: utf-8 -*-
# Copyright: Monitoreo developers
# MIT License (see LICENSE at the root of the repository)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  url:
    description:
      - The gateway's base URL, e.g. C(https://web-1.example.org:8470); usually
        set per host in the inventory (C(url="{{ monitoreo_url }}")).
    type: str
    required: true
  key:
    description:
      - The API key (C(mon_...)), e.g. from a vault variable.
      - Exactly one of O(key) and O(key_file) is needed.
    type: str
  key_file:
    description:
      - A file holding the API key on one line, read where the module runs.
    type: path
  ca_file:
    description:
      - PEM certificates of the CA that signed the gateway's certificate; the
        system's trusted CAs when not set.
    type: path
  validate_certs:
    description:
      - Verify the gateway's certificate and host name. Turn off only for a test.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for each answer.
    type: int
    default: 30
notes:
  - The modules need only Python's standard library where they run; run them
    with C(delegate_to=localhost) to reach the gateways from the controller.
"""

    ACTION = r"""
options:
  pids:
    description:
      - The processes by pid. One of O(pids), O(tree_of) and O(match) is needed.
    type: list
    elements: int
  tree_of:
    description:
      - A process and its descendants.
    type: int
  include_root:
    description:
      - With O(tree_of), whether the process itself is a target.
    type: bool
    default: true
  match:
    description:
      - The processes matching every given field.
    type: dict
    suboptions:
      name:
        description: The process name, exactly.
        type: str
      exe:
        description: The executable's path, exactly.
        type: str
      cmdline:
        description: A regular expression over the command line.
        type: str
      user:
        description: The real user.
        type: str
      cgroup:
        description: The cgroup path.
        type: str
      unit:
        description: The systemd unit.
        type: str
  allow_empty:
    description:
      - Whether a selector that matches nothing is success (not changed), as a
        second run after the processes are gone must be. When false, it fails.
    type: bool
    default: true
  max_targets:
    description:
      - Refuse (fail) when more processes than this match.
    type: int
    default: 100
  fail_on_partial:
    description:
      - Fail when some target was refused by policy, had gone or changed
        identity; in check mode, when the plan shows a refusal. When false
        the module succeeds and RV(results) says what happened to each.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    details: The plan is made and returned with each target's verdict; nothing is acted on.
  diff_mode:
    support: none
"""
