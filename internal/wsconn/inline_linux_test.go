package wsconn

import (
	"bytes"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loopless serves one connection on a socketpair through a poller whose
// loop never runs, so that whatever reaches the peer was written by the
// goroutine that sent it. It returns the connection and the peer's end.
func loopless(t *testing.T, cfg Config) (*poller, *pconn, int) {
	t.Helper()
	cfg.normalize()
	p, err := newPoller(cfg)
	if err != nil {
		t.Fatal(err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ps := &pollerSet{pollers: []*poller{p}}
	c := ps.adoptFD(fds[0], nil, nil)
	c.Start(nopHandler{})
	t.Cleanup(func() {
		p.drain()
		unix.Close(fds[1])
	})
	return p, c, fds[1]
}

// peerRead returns what the peer can read without waiting.
func peerRead(t *testing.T, fd int) []byte {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Read(fd, buf)
	if err == unix.EAGAIN {
		return nil
	}
	if err != nil {
		t.Fatalf("peer read: %v", err)
	}
	return buf[:n]
}

func frames(payloads ...string) []byte {
	var out []byte
	for _, p := range payloads {
		f := textFrame([]byte(p))
		out = append(out, f.hdr[:f.hlen]...)
		out = append(out, p...)
	}
	return out
}

// SendNow leaves the write to a loop that keeps up. Once the loop is more
// than maxLag behind, the sender writes, in one writev, what was queued
// before its own frame and then that frame; a plain Send still only
// queues.
func TestSendNowWritesOnlyWhenTheLoopIsBehind(t *testing.T) {
	var writes atomic.Int32
	cfg := Config{afterWrite: func() { writes.Add(1) }}
	p, c, peer := loopless(t, cfg)

	if err := c.SendNow([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if got := peerRead(t, peer); got != nil {
		t.Fatalf("the loop keeps up, yet the sender wrote %q", got)
	}

	p.behindSince.Store(time.Now().Add(-2 * maxLag).UnixNano())
	writes.Store(0)
	if err := c.SendNow([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if got, want := peerRead(t, peer), frames("a", "b"); !bytes.Equal(got, want) {
		t.Fatalf("peer read %q, want %q", got, want)
	}
	if n := writes.Load(); n != 1 {
		t.Fatalf("%d writes, want the queued frame and the new one in 1", n)
	}

	if err := c.Send([]byte("c")); err != nil {
		t.Fatal(err)
	}
	if got := peerRead(t, peer); got != nil {
		t.Fatalf("Send wrote %q itself", got)
	}
	c.mu.Lock()
	queued := len(c.queue)
	c.mu.Unlock()
	if queued != 1 {
		t.Fatalf("%d frames queued, want Send's 1", queued)
	}
}

// A loop that shuts a connection down while a sender writes it leaves the
// socket open for that write, which the peer receives whole, and the sender
// closes it afterwards.
func TestShutdownDuringAnInlineWrite(t *testing.T) {
	var p *poller
	var c *pconn
	var stillOpen, armed atomic.Bool
	cfg := Config{afterWrite: func() {
		if !armed.Swap(false) {
			return
		}
		p.shutdown(c, io.EOF) // what the loop does on a read error, meanwhile
		_, err := unix.FcntlInt(uintptr(c.fd), unix.F_GETFD, 0)
		stillOpen.Store(err == nil)
	}}
	p, c, peer := loopless(t, cfg)
	p.behindSince.Store(time.Now().Add(-2 * maxLag).UnixNano())
	armed.Store(true)
	if err := c.SendNow([]byte("last")); err != nil {
		t.Fatal(err)
	}
	if !stillOpen.Load() {
		t.Fatal("the socket was closed under the sender's write")
	}
	if got, want := peerRead(t, peer), frames("last"); !bytes.Equal(got, want) {
		t.Fatalf("peer read %q, want %q", got, want)
	}
	buf := make([]byte, 16)
	if n, err := unix.Read(peer, buf); n != 0 || err != nil {
		t.Fatalf("peer read %d bytes, %v after the frame; want end of stream", n, err)
	}
	if err := c.SendNow([]byte("more")); err != ErrClosed {
		t.Fatalf("SendNow after shutdown: %v, want ErrClosed", err)
	}
}
