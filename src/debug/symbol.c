/*
 * symbol.c -- backtraces and symbolisation (see symbol.h).
 *
 * libdw's Dwfl is not thread-safe and is costly to set up (it reads
 * /proc/self/maps and opens every ELF file), so there is one, made on
 * first use and guarded by a mutex; an address outside every module it
 * knows (a library dlopen'ed since) makes it re-read the maps once.
 *
 * One file on purpose: unwinding (the DWARF call frame information) and
 * naming frames (the line tables) both work through that one Dwfl and
 * its lock, and each has a fallback without libdw (frame pointers,
 * dladdr) chosen at the same #ifdef. Split, the Dwfl, its lock and the
 * refresh rule would have to be shared through a header for two callers.
 */
#include "debug/symbol.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#ifdef MOTE_HAVE_LIBDW
#include <dwarf.h>
#include <elfutils/libdwfl.h>
#include <stdlib.h>
#endif

/* ---- Report writer ---- */

void mote__out_init(mote__out *o, int fd) {
    o->fd = fd;
    o->n = 0;
}

void mote__out_flush(mote__out *o) {
    const char *p = o->buf;
    size_t left = o->n;
    while (left) {
        ssize_t w = write(o->fd, p, left);
        if (w <= 0)
            break; /* a report is best effort: drop what cannot be written */
        p += w;
        left -= (size_t)w;
    }
    o->n = 0;
}

void mote__out_printf(mote__out *o, const char *fmt, ...) {
    for (int pass = 0; pass < 2; pass++) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = sizeof o->buf - o->n;
        int len = vsnprintf(o->buf + o->n, room, fmt, ap);
        va_end(ap);
        if (len < 0)
            return;
        if ((size_t)len < room) {
            o->n += (size_t)len;
            return;
        }
        /* Did not fit: flush and try again; a line longer than the whole
         * buffer is cut. */
        if (pass == 0 && o->n) {
            mote__out_flush(o);
            continue;
        }
        o->n = sizeof o->buf - 1;
        mote__out_flush(o);
        return;
    }
}

/* ---- Capturing frames ---- */

MOTE_NOINLINE int mote__backtrace_here(void **pcs, int max, int skip) {
    void *all[128];
    int want = max + skip + 1 < 128 ? max + skip + 1 : 128;
    int n = backtrace(all, want);
    int k = 0;
    for (int i = skip + 1; i < n && k < max; i++) /* +1: this function */
        pcs[k++] = all[i];
    return k;
}

/* The frame-pointer chain: [fp] = the caller's fp, [fp + 8] = return
 * address; frames climb towards the top of the stack. */
static int frames_walk(const void *copy, uintptr_t lo, uintptr_t hi, uintptr_t fp, void **pcs, int max) {
    int n = 0;
    while (n < max && fp >= lo && fp <= hi - 2 * sizeof(uintptr_t) && fp % sizeof(uintptr_t) == 0) {
        const uintptr_t *f = (const uintptr_t *)(const void *)((const char *)copy + (fp - lo));
        uintptr_t next = f[0], ret = f[1];
        if (!ret)
            break;
        pcs[n++] = (void *)ret;
        if (next <= fp) /* frames climb towards the top of the stack */
            break;
        fp = next;
    }
    return n;
}

/* ---- Symbolisation ---- */

static pthread_mutex_t sym_lock = PTHREAD_MUTEX_INITIALIZER;
static int unwind_cfi(const mote__regs *r, const void *copy, uintptr_t lo, uintptr_t hi, void **pcs, int max);

int mote__unwind(const mote__regs *r, const void *copy, uintptr_t lo, uintptr_t hi, void **pcs, int max) {
    if (max <= 0)
        return 0;
    pthread_mutex_lock(&sym_lock);
    int n = unwind_cfi(r, copy, lo, hi, pcs, max);
    pthread_mutex_unlock(&sym_lock);
    if (n > 1)
        return n;
    pcs[0] = (void *)r->pc;
    return 1 + frames_walk(copy, lo, hi, r->fp, pcs + 1, max - 1);
}

/* Without libdw (or for an address libdw does not know): dladdr sees only
 * exported symbols, so a static function shows as object+offset. */
static void frame_dladdr(mote__out *o, const char *indent, int *idxp, uintptr_t pc, uintptr_t at) {
    int idx = (*idxp)++;
    Dl_info info;
    memset(&info, 0, sizeof info);
    if (dladdr((void *)at, &info) && info.dli_sname)
        mote__out_printf(o, "%s#%-2d 0x%016lx in %s+0x%lx [%s]\n", indent, idx, (unsigned long)pc,
                         info.dli_sname, (unsigned long)(at - (uintptr_t)info.dli_saddr),
                         info.dli_fname ? info.dli_fname : "?");
    else if (info.dli_fname)
        mote__out_printf(o, "%s#%-2d 0x%016lx in ?? [%s+0x%lx]\n", indent, idx, (unsigned long)pc,
                         info.dli_fname, (unsigned long)(at - (uintptr_t)info.dli_fbase));
    else
        mote__out_printf(o, "%s#%-2d 0x%016lx in ??\n", indent, idx, (unsigned long)pc);
}

#ifdef MOTE_HAVE_LIBDW
static Dwfl *dwfl;
static bool dwfl_reported;

static const Dwfl_Callbacks dwfl_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
};

/* With sym_lock held: (re)read the modules of this process. */
static Dwfl *dwfl_get(bool refresh) {
    if (dwfl && dwfl_reported && !refresh)
        return dwfl;
    if (!dwfl && !(dwfl = dwfl_begin(&dwfl_callbacks)))
        return NULL;
    dwfl_report_begin(dwfl);
    int r = dwfl_linux_proc_report(dwfl, getpid());
    dwfl_report_end(dwfl, NULL, NULL);
    dwfl_reported = r == 0;
    return dwfl_reported ? dwfl : NULL;
}

static Dwfl_Module *module_of(uintptr_t at) {
    Dwfl *d = dwfl_get(false);
    Dwfl_Module *m = d ? dwfl_addrmodule(d, at) : NULL;
    if (!m && d && (d = dwfl_get(true)))
        m = dwfl_addrmodule(d, at);
    return m;
}

/* The compile unit holding at. dwfl finds it through .debug_aranges,
 * which clang does not emit by default (elfutils 0.188 then answers
 * "address out of range"), so fall back to asking each unit whether its
 * ranges cover the address. */
static Dwarf_Die *cu_of(Dwfl_Module *m, uintptr_t at, Dwarf_Addr *bias) {
    Dwarf_Die *cu = dwfl_module_addrdie(m, at, bias);
    if (cu)
        return cu;
    for (cu = dwfl_module_nextcu(m, NULL, bias); cu; cu = dwfl_module_nextcu(m, cu, bias))
        if (dwarf_haspc(cu, at - *bias) == 1)
            return cu;
    return NULL;
}

/* The source line of at, through the same fallback as cu_of. */
static const char *line_of(Dwfl_Module *m, uintptr_t at, int *line) {
    Dwfl_Line *ln = dwfl_module_getsrc(m, at);
    if (ln)
        return dwfl_lineinfo(ln, NULL, line, NULL, NULL, NULL);
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = cu_of(m, at, &bias);
    Dwarf_Line *dl = cu ? dwarf_getsrc_die(cu, at - bias) : NULL;
    if (!dl || dwarf_lineno(dl, line) != 0)
        return NULL;
    return dwarf_linesrc(dl, NULL, NULL);
}

/* The file name of entry idx of cu's line table. */
static const char *cu_file(Dwarf_Die *cu, Dwarf_Word idx) {
    Dwarf_Files *files;
    size_t n;
    if (dwarf_getsrcfiles(cu, &files, &n) != 0 || idx >= n)
        return NULL;
    return dwarf_filesrc(files, idx, NULL, NULL);
}

static bool die_udata(Dwarf_Die *die, unsigned name, Dwarf_Word *out) {
    Dwarf_Attribute a;
    return dwarf_attr_integrate(die, name, &a) && dwarf_formudata(&a, out) == 0;
}

/* One frame, inlined calls first (innermost to outermost): each inlined
 * function at the line inside it, then at the line of its call site in
 * the function that contains it. */
static void frame_dwfl(mote__out *o, const char *indent, int *idxp, uintptr_t pc, uintptr_t at) {
    Dwfl_Module *m = module_of(at);
    if (!m) {
        frame_dladdr(o, indent, idxp, pc, at);
        return;
    }
    GElf_Off off = 0;
    GElf_Sym sym;
    const char *symname = dwfl_module_addrinfo(m, at, &off, &sym, NULL, NULL, NULL);
    int line = 0;
    const char *file = line_of(m, at, &line);
    Dwarf_Addr bias = 0;
    Dwarf_Die *cu = cu_of(m, at, &bias);
    Dwarf_Die *scopes = NULL, inner;
    int ns = cu ? dwarf_getscopes(cu, at - bias, &scopes) : 0;
    if (ns > 0) {
        /* dwarf_getscopes follows an inlined function's abstract origin;
         * its physical nesting (the functions it was inlined into) comes
         * from the innermost scope itself. */
        inner = scopes[0];
        free(scopes);
        scopes = NULL;
        ns = dwarf_getscopes_die(&inner, &scopes);
    }
    bool printed = false;
    for (int i = 0; i < ns; i++) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
            continue;
        const char *name = dwarf_diename(&scopes[i]);
        bool inl = tag == DW_TAG_inlined_subroutine;
        int idx = (*idxp)++;
        if (file)
            mote__out_printf(o, "%s#%-2d 0x%016lx in %s at %s:%d%s\n", indent, idx, (unsigned long)pc,
                             name ? name : symname ? symname : "??", file, line, inl ? " (inlined)" : "");
        else
            mote__out_printf(o, "%s#%-2d 0x%016lx in %s%s\n", indent, idx, (unsigned long)pc,
                             name ? name : symname ? symname : "??", inl ? " (inlined)" : "");
        printed = true;
        if (!inl)
            break;
        Dwarf_Word cf, cl;
        file = die_udata(&scopes[i], DW_AT_call_file, &cf) ? cu_file(cu, cf) : NULL;
        line = die_udata(&scopes[i], DW_AT_call_line, &cl) ? (int)cl : 0;
    }
    free(scopes);
    if (printed)
        return;
    const char *mod = dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    if (!symname) {
        frame_dladdr(o, indent, idxp, pc, at);
        return;
    }
    int idx = (*idxp)++;
    if (file)
        mote__out_printf(o, "%s#%-2d 0x%016lx in %s at %s:%d\n", indent, idx, (unsigned long)pc, symname, file,
                         line);
    else
        mote__out_printf(o, "%s#%-2d 0x%016lx in %s+0x%lx [%s]\n", indent, idx, (unsigned long)pc, symname,
                         (unsigned long)off, mod ? mod : "?");
}

/*
 * CFI unwinding of a stack that is not running, with libdw's own unwinder:
 * the Dwfl gets a "process" with one thread whose registers and memory
 * are the request below (set under sym_lock), so reads come from the
 * snapshot, never from live memory.
 */
static struct {
    const mote__regs *r;
    const unsigned char *copy;
    uintptr_t lo, hi;
    void **pcs;
    int max, n;
} uw;
static bool uw_attached;

static pid_t uw_next_thread(Dwfl *d, void *arg, void **thread_arg) {
    (void)d;
    (void)arg;
    (void)thread_arg;
    return 0; /* no thread list: only dwfl_getthread_frames is used */
}

static bool uw_get_thread(Dwfl *d, pid_t tid, void *arg, void **thread_arg) {
    (void)d;
    (void)arg;
    *thread_arg = NULL;
    return tid == 1;
}

static bool uw_memory_read(Dwfl *d, Dwarf_Addr addr, Dwarf_Word *out, void *arg) {
    (void)d;
    (void)arg;
    if (addr < uw.lo || addr > uw.hi - sizeof *out)
        return false;
    memcpy(out, uw.copy + (addr - uw.lo), sizeof *out);
    return true;
}

static bool uw_set_registers(Dwfl_Thread *th, void *arg) {
    (void)arg;
    const mote__regs *r = uw.r;
#if defined(__x86_64__)
    /* DWARF numbers: 3 rbx, 6 rbp, 7 rsp, 12-15 r12-r15. */
    Dwarf_Word rbx = r->rbx, bpsp[2] = {r->fp, r->sp}, hi4[4] = {r->r12, r->r13, r->r14, r->r15};
    if (!dwfl_thread_state_registers(th, 3, 1, &rbx) || !dwfl_thread_state_registers(th, 6, 2, bpsp) ||
        !dwfl_thread_state_registers(th, 12, 4, hi4))
        return false;
#elif defined(__aarch64__)
    /* DWARF numbers: 19-28 x19-x28, 29 fp, 31 sp. */
    Dwarf_Word x[10], fp = r->fp, sp = r->sp;
    for (int i = 0; i < 10; i++)
        x[i] = r->x19_28[i];
    if (!dwfl_thread_state_registers(th, 19, 10, x) || !dwfl_thread_state_registers(th, 29, 1, &fp) ||
        !dwfl_thread_state_registers(th, 31, 1, &sp))
        return false;
#else
    return false;
#endif
    dwfl_thread_state_register_pc(th, r->pc);
    return true;
}

static const Dwfl_Thread_Callbacks uw_callbacks = {
    .next_thread = uw_next_thread,
    .get_thread = uw_get_thread,
    .memory_read = uw_memory_read,
    .set_initial_registers = uw_set_registers,
};

static int uw_frame(Dwfl_Frame *f, void *arg) {
    (void)arg;
    Dwarf_Addr pc;
    if (!dwfl_frame_pc(f, &pc, NULL) || !pc)
        return DWARF_CB_ABORT;
    uw.pcs[uw.n++] = (void *)pc;
    return uw.n < uw.max ? DWARF_CB_OK : DWARF_CB_ABORT;
}

static int unwind_cfi(const mote__regs *r, const void *copy, uintptr_t lo, uintptr_t hi, void **pcs, int max) {
    Dwfl *d = dwfl_get(false);
    if (!d)
        return 0;
    if (!uw_attached)
        uw_attached = dwfl_attach_state(d, NULL, 1, &uw_callbacks, NULL);
    if (!uw_attached)
        return 0;
    uw.r = r;
    uw.copy = copy;
    uw.lo = lo;
    uw.hi = hi;
    uw.pcs = pcs;
    uw.max = max;
    uw.n = 0;
    dwfl_getthread_frames(d, 1, uw_frame, NULL);
    return uw.n;
}
#else
static int unwind_cfi(const mote__regs *r, const void *copy, uintptr_t lo, uintptr_t hi, void **pcs, int max) {
    (void)r, (void)copy, (void)lo, (void)hi, (void)pcs, (void)max;
    return 0;
}
#endif

void mote__frames_print(mote__out *o, const char *indent, void *const *pcs, int n, bool first_exact) {
    pthread_mutex_lock(&sym_lock);
    int line = 0; /* one number per line printed, inlined calls included */
    for (int i = 0; i < n; i++) {
        uintptr_t pc = (uintptr_t)pcs[i];
        if (i >= 2 && pcs[i] == pcs[i - 1] && pcs[i] == pcs[i - 2]) { /* recursion */
            int run = 1;
            while (i + run < n && pcs[i + run] == pcs[i])
                run++;
            mote__out_printf(o, "%s... %d more of the frame above\n", indent, run);
            i += run - 1;
            line += run;
            continue;
        }
        /* A return address is the instruction after the call: look up the
         * call itself, or the last call of a function shows the next line
         * (or the next function). */
        uintptr_t at = (i == 0 && first_exact) || pc == 0 ? pc : pc - 1;
#ifdef MOTE_HAVE_LIBDW
        frame_dwfl(o, indent, &line, pc, at);
#else
        frame_dladdr(o, indent, &line, pc, at);
#endif
    }
    pthread_mutex_unlock(&sym_lock);
}

/* The name of the function holding code address at (NULL: unknown). With
 * sym_lock held. */
static const char *function_at(uintptr_t at) {
#ifdef MOTE_HAVE_LIBDW
    Dwfl_Module *m = module_of(at);
    if (m) {
        GElf_Off off;
        GElf_Sym sym;
        const char *s = dwfl_module_addrinfo(m, at, &off, &sym, NULL, NULL, NULL);
        if (s)
            return s;
    }
#endif
    Dl_info info;
    return dladdr((void *)at, &info) ? info.dli_sname : NULL;
}

int mote__frames_first_public(void *const *pcs, int n) {
    int first = 0;
    pthread_mutex_lock(&sym_lock);
    for (int i = 0; i < n; i++) {
        const char *name = function_at((uintptr_t)pcs[i] - 1);
        if (name && !strncmp(name, "mote_", 5) && name[5] != '_') {
            first = i;
            break;
        }
    }
    pthread_mutex_unlock(&sym_lock);
    return first;
}

void mote__symbol_name(const void *pc, char *buf, size_t len) {
    if (!len)
        return;
    Dl_info info;
    memset(&info, 0, sizeof info);
    const char *name = dladdr(pc, &info) && info.dli_sname ? info.dli_sname : NULL;
    const char *file = NULL;
    int line = 0;
    pthread_mutex_lock(&sym_lock);
#ifdef MOTE_HAVE_LIBDW
    uintptr_t at = (uintptr_t)pc;
    Dwfl_Module *m = pc ? module_of(at) : NULL;
    if (m) {
        GElf_Off off;
        GElf_Sym sym;
        const char *s = dwfl_module_addrinfo(m, at, &off, &sym, NULL, NULL, NULL);
        if (s)
            name = s;
        file = line_of(m, at, &line);
    }
#endif
    if (name && file)
        snprintf(buf, len, "%s at %s:%d", name, file, line);
    else if (name)
        snprintf(buf, len, "%s", name);
    else
        snprintf(buf, len, "%p", pc);
    pthread_mutex_unlock(&sym_lock);
}

typedef struct fault_report {
    mote__regs regs;
    uintptr_t lo, hi;
} fault_report;

static void fault_print(void *arg) {
    fault_report *r = arg;
    static void *pcs[1024]; /* deep: an overflow's story is at the bottom */
    static mote__out o;
    /* The faulting thread waits for us: its stack is still. */
    int n = mote__unwind(&r->regs, (const void *)r->lo, r->lo, r->hi, pcs, 1024);
    mote__out_init(&o, 2);
    mote__out_printf(&o, "backtrace (innermost call first):\n");
    mote__frames_print(&o, "  ", pcs, n, true);
    mote__out_flush(&o);
}

void mote__fault_backtrace(const void *ucontext, uintptr_t lo, uintptr_t hi) {
    const ucontext_t *uc = ucontext;
    static fault_report r;
    memset(&r, 0, sizeof r);
    r.lo = lo;
    r.hi = hi;
#if defined(__x86_64__)
    const greg_t *g = uc->uc_mcontext.gregs;
    r.regs = (mote__regs){.pc = (uintptr_t)g[REG_RIP], .sp = (uintptr_t)g[REG_RSP], .fp = (uintptr_t)g[REG_RBP],
                          .rbx = (uintptr_t)g[REG_RBX], .r12 = (uintptr_t)g[REG_R12],
                          .r13 = (uintptr_t)g[REG_R13], .r14 = (uintptr_t)g[REG_R14],
                          .r15 = (uintptr_t)g[REG_R15]};
#elif defined(__aarch64__)
    r.regs.pc = uc->uc_mcontext.pc;
    r.regs.sp = uc->uc_mcontext.sp;
    r.regs.fp = uc->uc_mcontext.regs[29];
    for (int i = 0; i < 10; i++)
        r.regs.x19_28[i] = uc->uc_mcontext.regs[19 + i];
#else
    (void)uc;
    return;
#endif
    alarm(5); /* a lock held by the faulting code must not hang the report */
    /* libdw needs more than the small alternate signal stack. */
    mote__run_on_thread(fault_print, &r);
}

typedef struct thread_call {
    void (*fn)(void *);
    void *arg;
} thread_call;

static void *thread_call_main(void *arg) {
    thread_call *c = arg;
    c->fn(c->arg);
    return NULL;
}

void mote__run_on_thread(void (*fn)(void *), void *arg) {
    thread_call c = {fn, arg};
    pthread_t t;
    if (pthread_create(&t, NULL, thread_call_main, &c) != 0) {
        fn(arg);
        return;
    }
    pthread_join(t, NULL);
}

void mote__symbols_release(void) {
    pthread_mutex_lock(&sym_lock);
#ifdef MOTE_HAVE_LIBDW
    if (dwfl)
        dwfl_end(dwfl);
    dwfl = NULL;
    dwfl_reported = false;
#endif
    pthread_mutex_unlock(&sym_lock);
}
