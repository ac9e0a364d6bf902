package bench

import (
	"bufio"
	"context"
	"golang.org/x/sys/unix"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawServer answers every connection with serve, after reading the
// request head.
func rawServer(t *testing.T, serve func(c net.Conn, key string)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				serve(c, req.Header.Get("Sec-WebSocket-Key"))
			}()
		}
	}()
	return "ws://" + ln.Addr().String()
}

func upgradeHead(key string) string {
	return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptFor(key) + "\r\n\r\n"
}

// serverText frames a short text message as a server does (unmasked).
func serverText(s string) string {
	if len(s) > 125 {
		panic("serverText: long message")
	}
	return string(append([]byte{0x80 | opText, byte(len(s))}, s...))
}

// TestRawDialOutcomes: the raw dialer completes handshakes however the
// server's bytes are cut, and fails (in time, counted, with the reason) for
// servers that refuse, answer wrongly, or never answer.
func TestRawDialOutcomes(t *testing.T) {
	established := serverText(`{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}`)
	for name, tc := range map[string]struct {
		serve   func(c net.Conn, key string)
		ok      bool
		errPart string
	}{
		"in pieces": {serve: func(c net.Conn, key string) {
			msg := upgradeHead(key) + established
			for _, part := range []string{msg[:10], msg[10 : len(msg)-5], msg[len(msg)-5:]} {
				c.Write([]byte(part))
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(time.Second)
		}, ok: true},
		"refused": {serve: func(c net.Conn, _ string) {
			c.Write([]byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
		}, errPart: "404 Not Found"},
		"wrong accept": {serve: func(c net.Conn, _ string) {
			c.Write([]byte(upgradeHead("dGhlIHNhbXBsZSBub25jZQ==") + established))
		}, errPart: "Sec-WebSocket-Accept"},
		"pusher error": {serve: func(c net.Conn, key string) {
			c.Write([]byte(upgradeHead(key) + serverText(`{"event":"pusher:error","data":{"code":4001,"message":"App key k not in this cluster"}}`)))
			time.Sleep(time.Second)
		}, errPart: "App key k not in this cluster"},
		"closed": {serve: func(c net.Conn, key string) {
			c.Write([]byte(upgradeHead(key)))
		}, errPart: ErrHandshake.Error()},
		"silent": {serve: func(c net.Conn, _ string) {
			time.Sleep(2 * time.Second)
		}, errPart: errDialTimeout.Error()},
	} {
		t.Run(name, func(t *testing.T) {
			o := Options{Scenario: ScenarioConnect, URL: rawServer(t, tc.serve), Conns: 4, Concurrency: 2,
				DialTimeout: 300 * time.Millisecond, Timeout: 10 * time.Second, Reader: "epoll"}
			start := time.Now()
			res, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if elapsed := time.Since(start); elapsed > 5*time.Second {
				t.Errorf("run took %v", elapsed)
			}
			c := res.Connections
			if tc.ok {
				if !res.Complete || c.Established != 4 || c.Failed != 0 {
					t.Fatalf("connections %+v, errors %v", c, res.Errors)
				}
				return
			}
			if res.Complete || c.Established != 0 || c.Failed != 4 {
				t.Fatalf("connections %+v, errors %v", c, res.Errors)
			}
			if len(res.Errors) == 0 || !strings.Contains(strings.Join(res.Errors, "\n"), tc.errPart) {
				t.Fatalf("errors %q, want one with %q", res.Errors, tc.errPart)
			}
		})
	}
}

// A dial given up just as its answer arrived is dropped, not counted as a
// connection the server closed, even though the loop then reads the whole
// handshake.
func TestAbandonedDialIsNotCountedClosed(t *testing.T) {
	sh := new(shard)
	r, err := newEpollReader(1, 16, []*shard{sh})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	key, accept := newNonce()
	established := serverText(`{"event":"pusher:connection_established","data":"{\"socket_id\":\"1.2\",\"activity_timeout\":120}"}`)
	unix.Write(fds[1], []byte(upgradeHead(key)+established))
	unix.Close(fds[1])
	d := &dialState{done: make(chan error, 1), accept: accept}
	d.finish(errDialTimeout) // given up by the dialing goroutine
	<-d.done
	c := &conn{id: 0, fd: fds[0], sk: nopSink{}, dial: d}
	if err := r.register(c, unix.EPOLLIN|unix.EPOLLRDHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for r.conns[fds[0]].Load() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the loop did not drop the connection")
		}
		time.Sleep(time.Millisecond)
	}
	if n := sh.closed.Load(); n != 0 {
		t.Fatalf("%d connections counted as closed by the server, want 0", n)
	}
}
