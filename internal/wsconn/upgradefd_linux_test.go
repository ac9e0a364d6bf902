package wsconn

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// socketPair returns a non-blocking server socket with a small send buffer
// and its peer as a net.Conn.
func socketPair(t *testing.T) (int, net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fds[0], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[1]), "client")
	client, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return fds[0], client
}

// TestUpgradeFDFirstFlush: everything queued before Start (the 101, more
// than the socket takes at once, a pipelined client frame waiting to be
// read) is delivered whole and in order once Start has written the first
// part itself and handed the rest to the poller, and frames sent after
// Start follow.
func TestUpgradeFDFirstFlush(t *testing.T) {
	up, err := NewUpgrader(Config{Transport: TransportEpoll, Pollers: 1, MaxQueueBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	fd, client := socketPair(t)
	req, ok := ParseUpgrade([]byte(upgradeHead(validHead()...)))
	if !ok {
		t.Fatal("refused")
	}
	early := clientFrame(true, opText, []byte("hello"))
	c, err := up.UpgradeFD(fd, &req, early)
	if err != nil {
		t.Fatal(err)
	}
	clear(early) // UpgradeFD must have copied it
	const frames, size = 200, 4 << 10
	for i := range frames {
		if err := c.Send(numberedPayload(i, size)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	h := newChanHandler()
	c.Start(h)
	if err := c.Send(numberedPayload(frames, size)); err != nil {
		t.Fatalf("send after Start: %v", err)
	}

	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(client)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("response %v, %v", resp, err)
	}
	for seq := 0; seq <= frames; seq++ {
		hdr, p := readFrame(t, client, br)
		if hdr.OpCode != ws.OpText || len(p) != size || !bytes.HasPrefix(p, fmt.Appendf(nil, "%08d", seq)) {
			t.Fatalf("frame %d: opcode %v, %d bytes, payload %.8q", seq, hdr.OpCode, len(p), p)
		}
	}
	h.expectMessage(t, "hello")
	c.Close(CloseNormal, "")
	if hdr, _ := readFrame(t, client, br); hdr.OpCode != ws.OpClose {
		t.Fatalf("opcode %v, want close", hdr.OpCode)
	}
	client.Close()
	h.expectClosed(t)
}

// TestSmallMessagesThroughAFullSocket: messages small enough to be copied
// together for one writev, and larger ones between them, arrive whole and
// in order through a socket that takes a few KiB at a time, so that most
// writes are partial (TestIovecsResumeAnywhere tries every split).
func TestSmallMessagesThroughAFullSocket(t *testing.T) {
	up, err := NewUpgrader(Config{Transport: TransportEpoll, Pollers: 1, MaxQueueBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	fd, client := socketPair(t)
	req, _ := ParseUpgrade([]byte(upgradeHead(validHead()...)))
	c, err := up.UpgradeFD(fd, &req, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Start(newChanHandler())
	var want [][]byte
	for i := range 3000 {
		n := i % (mergeMax + 40)
		if i%97 == 0 {
			n = 70000
		}
		p := patterned(i, n)
		if err := c.Send(p); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		want = append(want, p)
	}
	if err := readExactly(client, want); err != nil {
		t.Fatal(err)
	}
}

// TestFirstMessageLeavesWithResponse: a message sent before Start, such as
// pusher:connection_established, leaves in the same writev as the 101
// response, header and payload included.
func TestFirstMessageLeavesWithResponse(t *testing.T) {
	var writes atomic.Int32
	cfg := Config{Transport: TransportEpoll, Pollers: 1}
	cfg.afterWrite = func() { writes.Add(1) }
	up, err := NewUpgrader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	fd, client := socketPair(t)
	req, _ := ParseUpgrade([]byte(upgradeHead(validHead()...)))
	c, err := up.UpgradeFD(fd, &req, nil)
	if err != nil {
		t.Fatal(err)
	}
	welcome := []byte(`{"event":"pusher:connection_established"}`)
	c.Send(welcome)
	c.Start(newChanHandler())
	if n := writes.Load(); n != 1 {
		t.Fatalf("Start wrote the response and the first message in %d writes, want 1", n)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(client)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("response %v, %v", resp, err)
	}
	if hdr, p := readFrame(t, client, br); hdr.OpCode != ws.OpText || !bytes.Equal(p, welcome) {
		t.Fatalf("opcode %v %q, want the text frame", hdr.OpCode, p)
	}
}

// TestUpgradeFDClosedBeforeStart: a connection refused before Start (as the
// front end refuses an unknown app) sends its error and close frame from
// Start's own flush, then waits for the client's close.
func TestUpgradeFDClosedBeforeStart(t *testing.T) {
	up, err := NewUpgrader(Config{Transport: TransportEpoll, Pollers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	fd, client := socketPair(t)
	req, _ := ParseUpgrade([]byte(upgradeHead(validHead()...)))
	c, err := up.UpgradeFD(fd, &req, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Send([]byte("refused"))
	c.Close(4001, "no such app")
	h := newChanHandler()
	c.Start(h)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(client)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("response %v, %v", resp, err)
	}
	if hdr, p := readFrame(t, client, br); hdr.OpCode != ws.OpText || string(p) != "refused" {
		t.Fatalf("opcode %v %q, want the text frame", hdr.OpCode, p)
	}
	if hdr, p := readFrame(t, client, br); hdr.OpCode != ws.OpClose || len(p) < 2 || int(p[0])<<8|int(p[1]) != 4001 {
		t.Fatalf("opcode %v %q, want close 4001", hdr.OpCode, p)
	}
	client.Write(clientFrame(true, opClose, []byte{0x0f, 0xa1}))
	h.expectClosed(t)
}

func TestUpgradeFDNeedsEpoll(t *testing.T) {
	up, err := NewUpgrader(Config{Transport: TransportGoroutine})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if up.RawSockets() {
		t.Fatal("the goroutine transport claims raw sockets")
	}
	req, _ := ParseUpgrade([]byte(upgradeHead(validHead()...)))
	if _, err := up.UpgradeFD(-1, &req, nil); !errors.Is(err, ErrNoPoller) {
		t.Fatalf("UpgradeFD: %v, want ErrNoPoller", err)
	}
}
