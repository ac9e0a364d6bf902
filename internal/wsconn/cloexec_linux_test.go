package wsconn

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAdoptedSocketIsCloseOnExec: the socket the epoll transport takes
// over from the Go runtime keeps close-on-exec, so that a process Herald
// starts (or a test starts beside it) does not inherit it and keep the
// connection open after Herald has closed it.
func TestAdoptedSocketIsCloseOnExec(t *testing.T) {
	up, err := NewUpgrader(Config{Transport: TransportEpoll, Pollers: 1, MaxQueueBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	req, ok := ParseUpgrade([]byte(upgradeHead(validHead()...)))
	if !ok {
		t.Fatal("refused")
	}
	c, err := up.UpgradeRaw(server, &req, nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, ok := c.(*pconn)
	if !ok {
		t.Fatalf("UpgradeRaw on the epoll transport gave %T", c)
	}
	defer pc.Abort(1000, "")
	flags, err := unix.FcntlInt(uintptr(pc.fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	if flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("adopted socket %d has no FD_CLOEXEC (flags %#x)", pc.fd, flags)
	}
}
