/*
 * AArch64 (AAPCS64) context switch.
 *
 *   void mote__ctx_swap(void **save_sp, void *new_sp);
 *
 * Saves x19-x30, d8-d15 and FPCR in a 176-byte frame on the current stack,
 * stores sp in *save_sp, loads new_sp and restores the same set, returning
 * through x30. A fresh stack holds a frame with x30 = mote__ctx_trampoline,
 * x19 = entry function, x20 = its argument.
 */
    .text
    .globl  mote__ctx_swap
    .hidden mote__ctx_swap
    .type   mote__ctx_swap,%function
    .p2align 4
mote__ctx_swap:
    sub     sp, sp, #176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8,  d9,  [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr
    str     x9, [sp, #160]
    mov     x9, sp
    str     x9, [x0]
    mov     sp, x1
    ldr     x9, [sp, #160]
    msr     fpcr, x9
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8,  d9,  [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #176
    ret
    .size   mote__ctx_swap,.-mote__ctx_swap

    .globl  mote__ctx_trampoline
    .hidden mote__ctx_trampoline
    .type   mote__ctx_trampoline,%function
    .p2align 4
mote__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30      /* outermost frame: unwinders stop here */
    mov     x29, #0
    mov     x0, x20
    blr     x19
    brk     #0              /* entry functions never return */
    .cfi_endproc
    .size   mote__ctx_trampoline,.-mote__ctx_trampoline

    .section .note.GNU-stack,"",%progbits
