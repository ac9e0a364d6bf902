//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// errDialTimeout ends a raw dial that took longer than --dial-timeout.
var errDialTimeout = errors.New("dial timed out")

// connect starts connecting a non-blocking socket to t, from la if given.
// The connection completes in the background; writes before then fail
// with EAGAIN.
func (t *rawTarget) connect(la net.IP) (int, error) {
	family := unix.AF_INET
	var sa unix.Sockaddr
	if ip4 := t.addr.IP.To4(); ip4 != nil {
		sa = &unix.SockaddrInet4{Port: t.addr.Port, Addr: [4]byte(ip4)}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: t.addr.Port, Addr: [16]byte(t.addr.IP.To16())}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if la != nil {
		bindAddressNoPort(uintptr(fd))
		var lsa unix.Sockaddr
		if ip4 := la.To4(); ip4 != nil && family == unix.AF_INET {
			lsa = &unix.SockaddrInet4{Addr: [4]byte(ip4)}
		} else {
			lsa = &unix.SockaddrInet6{Addr: [16]byte(la.To16())}
		}
		if err := unix.Bind(fd, lsa); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("bind %s: %w", la, err)
		}
	}
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return -1, fmt.Errorf("connect %s: %w", t.addr, err)
	}
	return fd, nil
}

// openRaw is open by the raw dialer: the socket goes to the epoll reader
// straight away, and the loop completes the handshake.
func (p *pool) openRaw(ctx context.Context, id int, raw *rawTarget, spec dialSpec) (*conn, error) {
	start := time.Now()
	er := p.rd.(*epollReader)
	var la net.IP
	if len(p.addrs) > 0 {
		la = p.addrs[id%len(p.addrs)]
	}
	fd, err := raw.connect(la)
	if err != nil {
		return nil, err
	}
	key, accept := newNonce()
	req := raw.request(key)
	// On loopback the connection is usually up already; if not, the loop
	// writes the request once the socket is writable.
	n, err := unix.Write(fd, req)
	if err != nil && err != unix.EAGAIN {
		closeFD(fd, true)
		return nil, fmt.Errorf("write: %w", err)
	}
	d := &dialState{done: make(chan error, 1), accept: accept, req: req[max(n, 0):]}
	events := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if len(d.req) > 0 {
		events |= unix.EPOLLOUT
	} else {
		d.req = nil
	}
	c := &conn{id: id, fd: fd, sk: spec.sk, dial: d}
	if err := er.register(c, events); err != nil {
		closeFD(fd, true)
		return nil, err
	}
	timer := time.NewTimer(time.Until(start.Add(p.o.DialTimeout)))
	defer timer.Stop()
	select {
	case err = <-d.done:
	case <-timer.C:
		err = abandon(c, d, errDialTimeout)
	case <-ctx.Done():
		err = abandon(c, d, ctx.Err())
	}
	if err != nil {
		return nil, err
	}
	p.handshake.Record(time.Since(start))
	return c, nil
}

// abandon gives a raw dial up, unless the loop has settled it meanwhile,
// and returns its outcome. The socket is shut down, not closed: the loop
// that serves it notices, forgets it and closes it.
func abandon(c *conn, d *dialState, why error) error {
	if !d.finish(why) {
		return <-d.done
	}
	c.wmu.Lock()
	if !c.wclosed {
		unix.Shutdown(c.fd, unix.SHUT_RDWR)
	}
	c.wmu.Unlock()
	return why
}
