/*
 * x86-64 System V context switch.
 *
 *   void mote__ctx_swap(void **save_sp, void *new_sp);
 *
 * Saves rbp, rbx, r12-r15, MXCSR and the x87 control word on the current
 * stack, stores rsp in *save_sp, loads new_sp and restores the same set.
 * Everything else is caller-saved by the ABI, so it is already dead here.
 * ldmxcsr and fldcw are slow (serialising on some cores) and the control
 * words almost never differ between processes, so they are only reloaded
 * when they differ from the ones just saved (still in eax/dx).
 *
 * A fresh stack (see mote__ctx_make) holds a frame whose return address is
 * mote__ctx_trampoline, with r12 = entry function and r13 = its argument.
 */
    .text
    .globl  mote__ctx_swap
    .hidden mote__ctx_swap
    .type   mote__ctx_swap,@function
    .p2align 4
mote__ctx_swap:
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movl    (%rsp), %eax        /* the control words now in force */
    movw    4(%rsp), %dx
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    cmpl    (%rsp), %eax        /* reload only what differs */
    je      1f
    ldmxcsr (%rsp)
1:
    cmpw    4(%rsp), %dx
    je      2f
    fldcw   4(%rsp)
2:
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   mote__ctx_swap,.-mote__ctx_swap

    .globl  mote__ctx_trampoline
    .hidden mote__ctx_trampoline
    .type   mote__ctx_trampoline,@function
    .p2align 4
mote__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip      /* outermost frame: unwinders stop here */
    movq    %r13, %rdi
    callq   *%r12
    ud2                     /* entry functions never return */
    .cfi_endproc
    .size   mote__ctx_trampoline,.-mote__ctx_trampoline

    .section .note.GNU-stack,"",@progbits
