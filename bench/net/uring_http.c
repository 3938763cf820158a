/*
 * uring_http.c -- epoll_http.c's server on io_uring completions, no
 * runtime: what a completion-based HTTP loop costs at best, and whether
 * multishot accept and multishot recv with provided buffers make it
 * cheaper than one recv per request (bench/net.sh, impls uring1 and
 * uringm).
 *
 *   net_uring_http HOST:PORT [single|multi]
 *
 * single: one accept, one recv into the connection's buffer and one send
 * per answer, each a one-shot SQE (what mote's socket calls submit).
 * multi: one multishot accept, one multishot recv per connection taking
 * buffers from a provided-buffer ring (copied into the connection's
 * buffer, as a read into the caller's buffer would), sends as in single.
 *
 * One thread, one ring, the ring flags mote's backend uses; every SQE
 * prepared while handling a batch of CQEs goes out with the next wait, in
 * one io_uring_enter.
 */
#include "http_handle.h"
#include <liburing.h>

enum { BUFS = 4096, BUF_SIZE = 4096, BGID = 1 };
enum { OP_ACCEPT, OP_RECV, OP_SEND };

typedef struct conn {
    net_conn c;
    int ops;          /* SQEs in flight: freed once none is and it is done */
    bool recv_armed;  /* multi: the multishot recv is live */
    bool done;        /* closed for good: free when ops reaches 0 */
} conn;

static struct io_uring ring;
static struct io_uring_buf_ring *bufs;
static char *buf_mem;
static bool multi;

static struct io_uring_sqe *sqe_get(void) {
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&ring)))
        io_uring_submit(&ring);
    return sqe;
}

/* user_data: the connection's pointer (or NULL for the listener) | op. */
static void submit(struct io_uring_sqe *sqe, conn *c, unsigned op) {
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | op);
    if (c)
        c->ops++;
}

static void arm_accept(int lfd) {
    struct io_uring_sqe *sqe = sqe_get();
    if (multi)
        io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    else
        io_uring_prep_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    submit(sqe, NULL, OP_ACCEPT);
}

static void arm_recv(conn *c) {
    struct io_uring_sqe *sqe = sqe_get();
    if (multi) {
        io_uring_prep_recv_multishot(sqe, c->c.fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = BGID;
        c->recv_armed = true;
    } else {
        io_uring_prep_recv(sqe, c->c.fd, c->c.in + c->c.in_len, NET_BUF - c->c.in_len, 0);
    }
    submit(sqe, c, OP_RECV);
}

static void send_out(conn *c) {
    struct io_uring_sqe *sqe = sqe_get();
    io_uring_prep_send(sqe, c->c.fd, c->c.out + c->c.out_off, c->c.out_len - c->c.out_off, MSG_NOSIGNAL);
    submit(sqe, c, OP_SEND);
}

/* No more I/O on c: a multishot recv still armed ends with the shutdown. */
static void finish(conn *c) {
    if (!c->done) {
        c->done = true;
        shutdown(c->c.fd, SHUT_RDWR);
    }
    if (c->ops == 0) {
        close(c->c.fd);
        free(c);
    }
}

/* Answer what c->in holds; send, or read on when there is nothing to say. */
static void drive(conn *c) {
    handle(&c->c);
    if (c->c.out_len)
        send_out(c);
    else if (c->c.in_len == NET_BUF)
        finish(c); /* full, and nothing in it the handler can use */
    else if (!multi)
        arm_recv(c);
}

static void on_recv(conn *c, int res, unsigned flags) {
    bool more = flags & IORING_CQE_F_MORE;
    if (multi) {
        c->recv_armed = more;
        if (res > 0) {
            unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
            size_t n = (size_t)res;
            if (n > NET_BUF - c->c.in_len)
                n = NET_BUF - c->c.in_len; /* cannot happen with keep-alive HTTP load */
            memcpy(c->c.in + c->c.in_len, buf_mem + (size_t)bid * BUF_SIZE, n);
            c->c.in_len += n;
            io_uring_buf_ring_add(bufs, buf_mem + (size_t)bid * BUF_SIZE, BUF_SIZE, (unsigned short)bid,
                                  io_uring_buf_ring_mask(BUFS), 0);
            io_uring_buf_ring_advance(bufs, 1);
        }
    }
    if (c->done || res <= 0) {
        if (res == -ENOBUFS && !c->done) { /* the kernel ran out of buffers: arm again */
            arm_recv(c);
            return;
        }
        finish(c);
        return;
    }
    if (!multi)
        c->c.in_len += (size_t)res;
    if (multi && !more)
        arm_recv(c);
    if (c->c.out_len == 0) /* else the send's completion answers it */
        drive(c);
}

static void on_send(conn *c, int res) {
    if (c->done || res < 0) {
        finish(c);
        return;
    }
    c->c.out_off += (size_t)res;
    if (c->c.out_off < c->c.out_len) {
        send_out(c);
        return;
    }
    c->c.out_off = c->c.out_len = 0;
    if (c->c.close_after)
        finish(c);
    else
        drive(c);
}

static void on_accept(int lfd, int res, unsigned flags) {
    if (!(flags & IORING_CQE_F_MORE))
        arm_accept(lfd);
    if (res < 0)
        return; /* ECONNABORTED, EMFILE: the next one */
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(res);
        return;
    }
    c->c.fd = res;
    arm_recv(c);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "single") && strcmp(argv[2], "multi"))) {
        fprintf(stderr, "usage: %s HOST:PORT [single|multi]\n", argv[0]);
        return 2;
    }
    multi = argc == 3 && strcmp(argv[2], "multi") == 0;
    struct sockaddr_in sa = net_addr(argv[1]);
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        net_die("socket");
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0)
        net_die(argv[1]);
    net_raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    struct io_uring_params p = {
        .flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                 IORING_SETUP_TASKRUN_FLAG,
        .cq_entries = 16384,
    };
    int r = io_uring_queue_init_params(1024, &ring, &p);
    if (r < 0) {
        errno = -r;
        net_die("io_uring_queue_init_params");
    }
    if (multi) {
        void *mem = NULL;
        if (!(buf_mem = malloc((size_t)BUFS * BUF_SIZE)) ||
            posix_memalign(&mem, 4096, BUFS * sizeof(struct io_uring_buf)) != 0)
            net_die("malloc");
        bufs = mem;
        io_uring_buf_ring_init(bufs);
        struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)mem, .ring_entries = BUFS, .bgid = BGID};
        if ((r = io_uring_register_buf_ring(&ring, &reg, 0)) < 0) {
            errno = -r;
            net_die("io_uring_register_buf_ring");
        }
        for (unsigned i = 0; i < BUFS; i++)
            io_uring_buf_ring_add(bufs, buf_mem + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
                                  io_uring_buf_ring_mask(BUFS), (int)i);
        io_uring_buf_ring_advance(bufs, BUFS);
    }
    arm_accept(lfd);
    for (;;) {
        struct io_uring_cqe *cqe;
        r = io_uring_submit_and_wait(&ring, 1);
        if (r < 0 && r != -EINTR && r != -EBUSY)
            net_die("io_uring_submit_and_wait");
        unsigned head, n = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            n++;
            uint64_t ud = cqe->user_data;
            conn *c = (conn *)(uintptr_t)(ud & ~(uint64_t)3);
            int res = cqe->res;
            unsigned flags = cqe->flags;
            if (!c) {
                on_accept(lfd, res, flags);
                continue;
            }
            if ((ud & 3) != OP_RECV || !(flags & IORING_CQE_F_MORE))
                c->ops--;
            if ((ud & 3) == OP_RECV)
                on_recv(c, res, flags);
            else
                on_send(c, res);
        }
        io_uring_cq_advance(&ring, n);
    }
}
