/* Independent Modbus TCP server peer for the waferscope I/O driver tests:
 * libmodbus (not our code, not tokio-modbus) answers the station's polls,
 * so the driver is checked against a third-party implementation.
 *
 * Build: cc -O2 -o OUT tests/peers/modbus/io_server.c $(pkg-config --cflags --libs libmodbus)
 *        (Debian: apt-get install libmodbus-dev; written against libmodbus 3.1.6)
 * Run:   OUT PORT   -> prints "listening PORT" once listening on 127.0.0.1
 *        (PORT 0 lets the kernel pick; the printed port is the real one).
 * Serves one client at a time, accepts the next after a disconnect, until
 * killed. Register map: below; pymodbus_server.py serves the same one plus
 * the stage (and fault injection), check_peers.py checks both.
 */
#include <modbus.h>
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* f32 as two registers, high word first (big-endian word order). Done by
 * hand: the meaning of libmodbus's modbus_set_float_* changed across versions. */
static void set_f32(uint16_t *dst, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    dst[0] = (uint16_t)(u >> 16);
    dst[1] = (uint16_t)(u & 0xFFFF);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-reply must not kill us */
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", atoi(argv[1]));
    modbus_mapping_t *m = modbus_mapping_new(16, 16, 200, 100);
    if (ctx == NULL || m == NULL) {
        fprintf(stderr, "io_server: %s\n", modbus_strerror(errno));
        return 1;
    }
    uint16_t *hr = m->tab_registers, *ir = m->tab_input_registers;
    set_f32(&hr[10], 12.5f);  /* stage.position_x */
    set_f32(&hr[12], -3.25f); /* stage.position_y */
    hr[14] = 120;             /* stage.following_error, 0.01 um */
    ir[0] = 1000;             /* illumination.intensity, 0.1 % */
    ir[1] = 0; ir[2] = 812;   /* lamp_hours u32, high word first */
    ir[3] = 80;               /* chuck_pressure, 0.1 kPa */
    ir[4] = 360;              /* camera.temperature, 0.1 degC */
    ir[5] = 99;               /* encoder.health */
    m->tab_input_bits[0] = 1; /* camera.link */

    /* libmodbus's listen sets SO_REUSEADDR, so a restart on the same port works. */
    int listener = modbus_tcp_listen(ctx, 1);
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    if (listener == -1 || getsockname(listener, (struct sockaddr *)&addr, &len) == -1) {
        fprintf(stderr, "io_server: listen: %s\n", modbus_strerror(errno));
        return 1;
    }
    printf("listening %d\n", ntohs(addr.sin_port));
    fflush(stdout);

    uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
    const int hl = modbus_get_header_length(ctx); /* MBAP: 7 bytes, then the PDU */
    for (;;) {
        /* Some libmodbus versions close the listener when accept fails: give up. */
        if (modbus_tcp_accept(ctx, &listener) == -1) {
            fprintf(stderr, "io_server: accept: %s\n", modbus_strerror(errno));
            return 1;
        }
        int rc;
        while ((rc = modbus_receive(ctx, q)) != -1) {
            if (rc == 0)
                continue; /* a query libmodbus chose to ignore */
            /* Heartbeats: a FC3 read covering HR i (0..4) bumps it before the
             * reply is built, so every read sees a fresh value. Only valid
             * requests count, as an exception reply reads nothing. */
            int start = q[hl + 1] << 8 | q[hl + 2], n = q[hl + 3] << 8 | q[hl + 4];
            if (q[hl] == 3 && n >= 1 && n <= 125 && start + n <= m->nb_registers)
                for (int i = start; i < start + n && i < 5; i++)
                    hr[i]++; /* uint16_t wraps at 65536 */
            modbus_reply(ctx, q, rc, m);
        }
        modbus_close(ctx); /* client gone (or a broken frame): take the next one */
    }
}
