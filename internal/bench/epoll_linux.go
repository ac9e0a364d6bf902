//go:build linux

package bench

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const epollSupported = true

// epollReader reads connections with a few epoll loops, one goroutine each,
// sharing one read buffer per loop: an idle connection costs no goroutine
// and no buffer.
type epollReader struct {
	loops []*epollLoop
	conns []atomic.Pointer[conn] // by conn id, which rides in the epoll event
	next  atomic.Uint32
	stop  atomic.Bool
	wg    sync.WaitGroup
	once  sync.Once
}

type epollLoop struct {
	epfd int
	sh   *shard
}

func newEpollReader(loops, maxConns int, shards []*shard) (*epollReader, error) {
	r := &epollReader{conns: make([]atomic.Pointer[conn], maxConns)}
	for i := range loops {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			r.close()
			return nil, fmt.Errorf("epoll_create1: %w", err)
		}
		l := &epollLoop{epfd: epfd, sh: shards[i%len(shards)]}
		r.loops = append(r.loops, l)
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.run(l)
		}()
	}
	return r, nil
}

func (r *epollReader) name() string { return "epoll" }

// adopt takes c's socket out of the Go runtime and into a loop. Nothing may
// use c.nc afterwards.
func (r *epollReader) adopt(c *conn) error {
	fd, err := dupConn(c.nc)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	c.nc.Close() // the duplicate keeps the socket open
	c.nc = nil
	c.fd = fd
	c.wmu.Unlock()
	if c.id >= len(r.conns) {
		return fmt.Errorf("conn id %d beyond %d", c.id, len(r.conns))
	}
	r.conns[c.id].Store(c)
	l := r.loops[int(r.next.Add(1))%len(r.loops)]
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd), Pad: int32(c.id)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

func (r *epollReader) run(l *epollLoop) {
	events := make([]unix.EpollEvent, 512)
	buf := make([]byte, 64<<10)
	for !r.stop.Load() {
		n, err := unix.EpollWait(l.epfd, events, 100)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		for _, ev := range events[:n] {
			c := r.conns[ev.Pad].Load()
			if c == nil {
				continue
			}
			r.read(l, c, buf)
		}
	}
}

// read drains c's socket into buf (level-triggered: whatever a full buffer
// leaves behind brings the loop back).
func (r *epollReader) read(l *epollLoop, c *conn, buf []byte) {
	for {
		n, err := unix.Read(c.fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if n <= 0 || err != nil {
			r.lost(l, c)
			return
		}
		if err := c.feed(buf[:n], time.Now().UnixNano(), l.sh); err != nil {
			r.lost(l, c)
			return
		}
		if n < len(buf) {
			return
		}
	}
}

// lost forgets a connection the server closed (or that broke).
func (r *epollReader) lost(l *epollLoop, c *conn) {
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	l.sh.closed.Add(1)
	r.conns[c.id].Store(nil)
	c.close(true)
}

// close stops the loops; the connections stay open for the caller to close.
func (r *epollReader) close() {
	r.once.Do(func() {
		r.stop.Store(true)
		r.wg.Wait()
		for _, l := range r.loops {
			unix.Close(l.epfd)
		}
	})
}

// dupConn duplicates a connection's socket descriptor. The duplicate shares
// the socket and its O_NONBLOCK flag.
func dupConn(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("connection has no file descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.Dup(int(s)) }); err != nil {
		return -1, err
	}
	if dupErr != nil {
		return -1, fmt.Errorf("dup: %w", dupErr)
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// writeFD writes all of b to a non-blocking socket, waiting for room when
// the kernel buffer is full.
func writeFD(fd int, b []byte, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if n > 0 {
			b = b[n:]
			continue
		}
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			left := time.Until(deadline)
			if left <= 0 {
				return fmt.Errorf("write: %w", unix.ETIMEDOUT)
			}
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			unix.Poll(pfd, int(min(left, 100*time.Millisecond)/time.Millisecond)+1)
			continue
		}
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// closeFD closes a socket; hard resets it so no TIME_WAIT is left behind.
func closeFD(fd int, hard bool) {
	if hard {
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	unix.Close(fd)
}

// setRecvBuffer shrinks a socket's receive buffer before it connects, so a
// connection that stops reading stalls the server's writes quickly.
func setRecvBuffer(fd uintptr, size int) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size)
}
