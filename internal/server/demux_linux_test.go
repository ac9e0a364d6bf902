//go:build linux

package server

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fdTake is the test demux's takeFD: take's answer, written to the socket.
func fdTake(ds *demuxServer) func(int, []byte, []byte) bool {
	return func(fd int, head, rest []byte) bool {
		if !wantsTake(head) {
			return false
		}
		ds.takenFD.Add(1)
		unix.Write(fd, []byte(takeAnswer(head, rest)))
		unix.Close(fd)
		return true
	}
}

// rawAcceptLoop sets no TCP_NODELAY of its own: the kernel must copy the
// listener's to every socket accept4 returns.
func TestAcceptedSocketsInheritNoDelay(t *testing.T) {
	for _, set := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		rc, err := ln.(*net.TCPListener).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var lfd int
		rc.Control(func(s uintptr) { lfd = int(s) })
		if set {
			if err := inheritNoDelay(lfd); err != nil {
				t.Fatal(err)
			}
		}
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var fd int
		var acceptErr error
		// The listener is non-blocking; the connection is queued once Dial
		// has returned, but give the kernel a moment on a loaded machine.
		for i := 0; i < 100; i++ {
			if fd, acceptErr = accept4(lfd); acceptErr != unix.EAGAIN {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if acceptErr != nil {
			t.Fatal(acceptErr)
		}
		nodelay, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		if got := nodelay != 0; got != set {
			t.Errorf("listener TCP_NODELAY %v: accepted socket has it %v", set, got)
		}
	}
}
