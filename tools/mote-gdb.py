# mote-gdb.py -- gdb commands for programs that use mote (after Go's
# runtime-gdb.py).
#
#   mote procs          every process: id, name, state (and what a
#                       suspended one waits for: receive, sleep, ...)
#   mote bt ID|NAME [bt options]
#                       backtrace of a suspended process, from the
#                       registers its context switch saved on its stack
#
# Installed next to libmote.so for gdb's auto-loading
# (share/gdb/auto-load/<libdir>/libmote.so.<version>-gdb.py); for a program
# linked with libmote.a:  (gdb) source /path/to/mote-gdb.py
#
# `mote bt` points the current thread's registers at the process's saved
# context for as long as the backtrace takes, then puts them back (as Go's
# `goroutine N bt` does): it needs a live process, not a core file.
import struct

import gdb

STATES = ("idle", "runnable", "running", "suspended")


def _registry():
    """proc.c's registry of processes (a static struct named P)."""
    syms = []
    if hasattr(gdb, "lookup_static_symbols"):
        syms = gdb.lookup_static_symbols("P")
    else:
        s = gdb.lookup_static_symbol("P")
        syms = [s] if s else []
    for sym in syms:
        v = sym.value()
        try:
            v["reg"][0]["head"]
            return v
        except gdb.error:
            continue
    raise gdb.GdbError("mote: no process registry here (is the program linked with mote, "
                       "with debug information?)")


def processes():
    """Every process, as a gdb.Value of type struct mote_proc *."""
    reg = _registry()["reg"]
    lo, hi = reg.type.range()
    for i in range(lo, hi + 1):
        p = reg[i]["head"]
        while int(p) != 0:
            yield p
            p = p["reg_next"]


def proc_name(p):
    ext = p["ext"]
    if int(ext) == 0:
        return ""
    try:
        return ext["name"].string(errors="replace")
    except gdb.error:
        return ""


def proc_state(p):
    return STATES[int(p["task"]["state"]) & 3]


WAITS = {"MOTE__WAIT_RECEIVE": "receive", "MOTE__WAIT_AWAIT": "await", "MOTE__WAIT_CALL": "call",
         "MOTE__WAIT_POLL": "poll", "MOTE__WAIT_SLEEP": "sleep", "MOTE__WAIT_FD": "fd wait",
         "MOTE__WAIT_RESOLVE": "name lookup"}


def proc_wait(p):
    """What a suspended process waits for, from the note its stack header
    points to (src/ctx/ctx.h, mote__wait_note; kinds in src/proc/future.h)."""
    stack = p["task"]["stack"]
    if int(stack) == 0 or proc_state(p) != "suspended":
        return ""
    if int(stack["wait"]) == 0:
        return ""
    note = stack["wait"].dereference()
    kind = int(note["kind"])
    name = ""
    try:
        for f in gdb.lookup_type("enum mote__wait_kind").fields():
            if f.enumval == kind:
                name = WAITS.get(f.name, "")
    except gdb.error:
        return ""
    if name == "call":
        return "in call to process %d" % int(note["obj"])
    if name == "fd wait":
        return "in fd wait (fd %d)" % int(note["arg"])
    return "in " + name if name else ""


def find_process(key):
    for p in processes():
        if str(int(p["id"])) == key or proc_name(p) == key:
            return p
    raise gdb.GdbError("mote: no process %s" % key)


def _is_x86_64():
    return "x86-64" in gdb.selected_inferior().architecture().name()


def saved_registers(p):
    """Registers of a suspended process, as mote__ctx_swap saved them
    (see src/ctx/switch_*.S): {gdb register name: value}."""
    stack = p["task"]["stack"]
    if int(stack) == 0:
        raise gdb.GdbError("mote: process %d holds no stack (%s)" % (int(p["id"]), proc_state(p)))
    if proc_state(p) != "suspended":
        raise gdb.GdbError("mote: process %d is %s, not suspended: its stack is live "
                           "(find its worker thread with `info threads`)" % (int(p["id"]), proc_state(p)))
    sp = int(stack["ctx"]["sp"])
    mem = gdb.selected_inferior().read_memory(sp, 176).tobytes()
    if _is_x86_64():
        f = struct.unpack("<8Q", mem[:64])
        # control words, r15, r14, r13, r12, rbx, rbp, return address
        return {"r15": f[1], "r14": f[2], "r13": f[3], "r12": f[4], "rbx": f[5],
                "rbp": f[6], "rip": f[7], "rsp": sp + 64}
    f = struct.unpack("<12Q", mem[:96])
    # x19..x28, x29 (fp), x30 (lr), then d8..d15 and fpcr
    regs = {"x%d" % (19 + i): f[i] for i in range(10)}
    regs.update({"x29": f[10], "x30": f[11], "pc": f[11], "sp": sp + 176})
    return regs


class MoteCommand(gdb.Command):
    """Commands for mote processes: mote procs, mote bt ID|NAME."""

    def __init__(self):
        super().__init__("mote", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)


class MoteProcs(gdb.Command):
    """List mote processes: id, name, state."""

    def __init__(self):
        super().__init__("mote procs", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        rows = sorted(processes(), key=lambda p: int(p["id"]))
        print("%6s  %-24s  %s" % ("id", "name", "state"))
        for p in rows:
            print("%6d  %-24s  %s  %s" % (int(p["id"]), proc_name(p) or "-", proc_state(p), proc_wait(p)))


class MoteBt(gdb.Command):
    """Backtrace of a suspended mote process: mote bt ID|NAME [bt options]."""

    def __init__(self):
        super().__init__("mote bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        args = gdb.string_to_argv(arg)
        if not args:
            raise gdb.GdbError("usage: mote bt ID|NAME [bt options]")
        regs = saved_registers(find_process(args[0]))
        selected = gdb.selected_frame()
        gdb.newest_frame().select()
        saved = {r: int(gdb.parse_and_eval("$" + r)) for r in regs}
        try:
            for r, v in regs.items():
                gdb.execute("set $%s = %d" % (r, v), to_string=True)
            gdb.execute("bt " + " ".join(args[1:]))
        finally:
            gdb.newest_frame().select()
            for r, v in saved.items():
                gdb.execute("set $%s = %d" % (r, v), to_string=True)
            try:
                selected.select()
            except gdb.error:
                pass


MoteCommand()
MoteProcs()
MoteBt()
