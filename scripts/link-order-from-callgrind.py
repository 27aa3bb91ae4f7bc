#!/usr/bin/env python3
"""Reads a callgrind profile (written with --compress-strings=no --demangle=no) and prints the
mangled names of the functions of one object file that ran, most instructions first: the
symbol-ordering file for the linker (see crates/sundial-server/build.rs).

usage: link-order-from-callgrind.py PROFILE OBJECT_PATH > order.txt
"""
import collections
import sys


def executed_functions(profile, obj):
    cost = collections.Counter()
    current_obj = current_fn = callee_obj = None
    after_calls = False
    with open(profile, errors="replace") as lines:
        for line in lines:
            key, _, value = line.partition("=")
            value = value.strip()
            if key == "ob":
                current_obj = value
            elif key == "fn":
                current_fn = (current_obj, value)
                cost[current_fn] += 0
            elif key == "cob":
                callee_obj = value
            elif key == "cfn":
                cost[(callee_obj or current_obj, value)] += 0
                callee_obj = None
            elif key == "calls":
                after_calls = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                # A cost line; the one right after `calls=` is the inclusive cost of a call.
                if after_calls:
                    after_calls = False
                    continue
                fields = line.split()
                if len(fields) > 1 and current_fn:
                    cost[current_fn] += int(fields[1])
    ranked = sorted(cost.items(), key=lambda item: -item[1])
    # Addresses without a symbol (PLT stubs and the like) cannot be ordered by name.
    return [name for (o, name), _ in ranked if o == obj and not name.startswith("0x")]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    for name in executed_functions(sys.argv[1], sys.argv[2]):
        print(name)


if __name__ == "__main__":
    main()
