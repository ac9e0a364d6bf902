//go:build linux

package wsconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/cpu"
	"golang.org/x/sys/unix"
)

const defaultTransport = TransportEpoll

const (
	readBufferSize = 64 * 1024
	maxIovecs      = 1024 // IOV_MAX on Linux: 512 messages, a header and a payload each
	maxEvents      = 512
)

// pollerSet spreads connections over its pollers round-robin.
type pollerSet struct {
	pollers []*poller
	next    atomic.Uint32
	wg      sync.WaitGroup
}

func newPollerSet(cfg Config) (*pollerSet, error) {
	ps := &pollerSet{}
	for i := 0; i < cfg.Pollers; i++ {
		p, err := newPoller(cfg)
		if err != nil {
			ps.close()
			return nil, err
		}
		ps.pollers = append(ps.pollers, p)
		ps.wg.Add(1)
		go func() {
			defer ps.wg.Done()
			p.loop()
		}()
	}
	return ps, nil
}

// bytesWritten sums what every loop has written.
func (ps *pollerSet) bytesWritten() uint64 {
	var n uint64
	for _, p := range ps.pollers {
		n += p.written.Load()
	}
	return n
}

func (ps *pollerSet) close() {
	for _, p := range ps.pollers {
		p.stop()
	}
	ps.wg.Wait()
}

// adopt takes a connection over from the Go runtime: its socket is
// duplicated, the runtime's copy closed, and the duplicate served by a
// poller. early holds bytes already read from the socket, which adopt
// copies; resp, if not nil, is the handshake response, which leaves first,
// in one writev with the first messages sent.
func (ps *pollerSet) adopt(nc net.Conn, early, resp []byte) (Conn, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		nc.Close()
		return nil, errors.New("connection has no file descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		nc.Close()
		return nil, err
	}
	fd := -1
	var dupErr error
	// F_DUPFD_CLOEXEC, not dup: a plain dup clears close-on-exec, and a
	// child process started later would inherit the socket and hold the
	// connection open after Herald closed it.
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		nc.Close()
		return nil, err
	}
	if dupErr != nil {
		nc.Close()
		return nil, fmt.Errorf("dup: %w", dupErr)
	}
	// The duplicate shares the socket, and its O_NONBLOCK flag, with the
	// runtime's descriptor; closing the latter leaves the socket open.
	nc.Close()
	return ps.adoptFD(fd, early, resp), nil
}

// adoptFD serves a non-blocking socket the Go runtime never saw, as adopt
// does; the connection owns fd from now on.
func (ps *pollerSet) adoptFD(fd int, early, resp []byte) *pconn {
	p := ps.pollers[int(ps.next.Add(1))%len(ps.pollers)]
	c := &pconn{fd: int32(fd), p: p}
	if len(early) > 0 {
		c.reader.setCarry(bytes.Clone(early))
	}
	if resp != nil {
		// Room for the response and the first message, which every
		// protocol sends at once: one array, not one and then a larger.
		c.queue = append(make([]outFrame, 0, 2), rawFrame(resp))
		c.queued = int32(len(resp))
		c.respQueued = true
	}
	c.lastRead.Store(time.Now().UnixNano())
	return c
}

// poller is one epoll loop. It owns every read and write of its
// connections' sockets, and closes them; other goroutines only queue
// messages and ask it, through its todo list and an eventfd, to act.
type poller struct {
	cfg        Config
	maxMessage int32 // cfg.MaxMessageBytes for the frame readers: see readLimit
	epfd       int
	evfd       int

	mu sync.Mutex
	// conns holds the registered connections by fd. Descriptors are small
	// dense integers, so a slice costs a word per descriptor where a map
	// cost several per connection; it grows on demand and never shrinks.
	conns    []*pconn
	nconns   int
	todo     []*pconn
	todoNext []*pconn // the loop's drained list, reused so scheduling allocates nothing
	woken    bool
	done     bool
	one      [8]byte // eventfd increment; a field so that waking allocates nothing

	// Owned by the loop goroutine.
	buf     []byte
	iovs    []unix.Iovec
	scratch []byte // small frames copied together for one writev: see iovBuilder
	evbuf   [8]byte

	// written counts the bytes handed to the kernel, once per flush: by
	// the loop, and by Start for a connection's first flush. It has a cache
	// line of its own, away from mu, which senders take all the time.
	_       cpu.CacheLinePad
	written atomic.Uint64
	_       cpu.CacheLinePad
}

func newPoller(cfg Config) (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, fmt.Errorf("epoll_ctl eventfd: %w", err)
	}
	return &poller{
		one:        [8]byte{1},
		cfg:        cfg,
		maxMessage: readLimit(cfg.MaxMessageBytes),
		epfd:       epfd,
		evfd:       evfd,
		buf:        make([]byte, readBufferSize),
		iovs:       make([]unix.Iovec, maxIovecs),
		scratch:    make([]byte, scratchSize),
	}, nil
}

// schedule asks the loop to look at c (flush it, or finish closing it).
func (p *poller) schedule(c *pconn) {
	p.mu.Lock()
	p.todo = append(p.todo, c)
	wake := !p.woken
	p.woken = true
	p.mu.Unlock()
	if wake {
		p.wake()
	}
}

func (p *poller) wake() {
	unix.Write(p.evfd, p.one[:])
}

func (p *poller) stop() {
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
	p.wake()
}

func (p *poller) loop() {
	events := make([]unix.EpollEvent, maxEvents)
	conns := make([]*pconn, maxEvents)
	for {
		// Checked before every wait, not after: the stop wake-up may have
		// been consumed by the previous round's eventfd read.
		p.mu.Lock()
		done := p.done
		p.mu.Unlock()
		if done {
			p.drain()
			return
		}
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil && err != unix.EINTR {
			panic(fmt.Sprintf("epoll_wait: %v", err)) // the epoll fd is ours; this cannot happen
		}
		p.mu.Lock()
		for i := 0; i < n; i++ {
			conns[i] = p.lookup(int(events[i].Fd))
		}
		p.mu.Unlock()
		for i := 0; i < n; i++ {
			ev := events[i]
			if int(ev.Fd) == p.evfd {
				unix.Read(p.evfd, p.evbuf[:])
				continue
			}
			c := conns[i]
			conns[i] = nil
			if c == nil {
				continue
			}
			if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				p.read(c)
			}
			if ev.Events&unix.EPOLLOUT != 0 {
				p.flush(c)
			}
		}
		p.runTodo()
	}
}

// drain closes every connection and the poller's own descriptors.
func (p *poller) drain() {
	p.mu.Lock()
	all := make([]*pconn, 0, p.nconns)
	for _, c := range p.conns {
		if c != nil {
			all = append(all, c)
		}
	}
	p.mu.Unlock()
	for _, c := range all {
		p.shutdown(c, ErrClosed)
	}
	unix.Close(p.epfd)
	unix.Close(p.evfd)
}

// runTodo serves connections that asked for the loop's attention, until
// none is left.
func (p *poller) runTodo() {
	for {
		p.mu.Lock()
		todo := p.todo
		p.todo = p.todoNext[:0]
		p.todoNext = nil
		if len(todo) == 0 {
			p.woken = false
		}
		p.mu.Unlock()
		if len(todo) == 0 {
			return
		}
		for i, c := range todo {
			todo[i] = nil
			c.mu.Lock()
			c.scheduled = false
			carry := c.pendingCarry && !c.closed
			c.pendingCarry = false
			c.mu.Unlock()
			if carry {
				if err := c.reader.feed(nil, p.maxMessage, c); err != nil {
					c.fail(err)
				}
			}
			p.flush(c)
		}
		p.mu.Lock()
		p.todoNext = todo[:0]
		p.mu.Unlock()
	}
}

// register adds a started connection to epoll, waiting for room to write
// too if its first flush left bytes over.
func (p *poller) register(c *pconn) error {
	events := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if c.wantWrite {
		events |= unix.EPOLLOUT
	}
	c.registered = true
	p.mu.Lock()
	p.insert(c)
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: events, Fd: c.fd}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(c.fd), &ev); err != nil {
		p.mu.Lock()
		p.remove(c)
		p.mu.Unlock()
		c.registered = false
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	return nil
}

// lookup returns the connection registered on fd, or nil; p.mu is held.
func (p *poller) lookup(fd int) *pconn {
	if fd < 0 || fd >= len(p.conns) {
		return nil
	}
	return p.conns[fd]
}

// insert registers c under its fd; p.mu is held.
func (p *poller) insert(c *pconn) {
	if int(c.fd) >= len(p.conns) {
		p.conns = slices.Grow(p.conns, int(c.fd)+1-len(p.conns))
		p.conns = p.conns[:cap(p.conns)]
	}
	if p.conns[int(c.fd)] == nil {
		p.nconns++
	}
	p.conns[int(c.fd)] = c
}

// remove unregisters c, unless its fd now belongs to another; p.mu is held.
func (p *poller) remove(c *pconn) {
	if p.lookup(int(c.fd)) == c {
		p.conns[int(c.fd)] = nil
		p.nconns--
	}
}

// read takes one bufferful from the socket; level-triggered epoll reports
// the connection again if more is waiting, which keeps connections fair.
func (p *poller) read(c *pconn) {
	if c.isClosed() {
		return
	}
	n, err := unix.Read(int(c.fd), p.buf)
	switch {
	case n > 0:
		c.lastRead.Store(time.Now().UnixNano())
		if err := c.reader.feed(p.buf[:n], p.maxMessage, c); err != nil {
			c.fail(err)
		}
	case n == 0:
		p.readEOF(c)
	case err == unix.EAGAIN || err == unix.EINTR:
	default:
		p.shutdown(c, err)
	}
}

// readEOF handles the client's FIN. A client may send its close frame and
// shut down its side of the socket at once, reading on, so the socket only
// goes once the close frame it is owed is out: its answer to the client's
// close, or to a violation. Frames that came with the handshake, not yet
// parsed, are parsed first: the client sent them before its FIN.
func (p *poller) readEOF(c *pconn) {
	c.mu.Lock()
	carry := c.pendingCarry
	c.pendingCarry = false
	c.mu.Unlock()
	if carry {
		if err := c.reader.feed(nil, p.maxMessage, c); err != nil {
			c.fail(err)
		}
	}
	if c.isClosed() {
		return // the close frame went out while the carry was parsed
	}
	if c.sentClose || !c.peerClosed && c.failure() == nil {
		p.shutdown(c, c.closeErr())
		return
	}
	// The flush ends the connection once the close frame is written. If
	// the kernel refuses it for now, only room to write is waited for:
	// the FIN would report the socket readable again and again. The close
	// timer bounds the wait.
	p.flush(c)
	if !c.isClosed() && c.wantWrite {
		p.modify(c, unix.EPOLLOUT)
	}
}

// flush writes whatever is queued for c with as few writev calls as the
// kernel allows, then finishes a close if one is pending.
func (p *poller) flush(c *pconn) { p.flushWith(c, p.iovs, p.scratch) }

// flushWith is flush with the iovec buffer iovs and the scratch buffer
// scratch (which may be nil). Besides the loop, only Start calls it, before
// the connection is registered, with buffers of its own.
func (p *poller) flushWith(c *pconn, iovs []unix.Iovec, scratch []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.forceClose {
		c.mu.Unlock()
		p.shutdown(c, c.closeErr())
		return
	}
	if c.dropOut {
		c.dropOut = false
		c.queued -= int32(c.dropUnwritten())
	}
	switch pong := c.pendingPong(); {
	case pong == nil:
	case c.closing:
		c.rare.pong = nil // nothing may follow a close frame
	case !c.wantWrite:
		// The answer to the latest ping, behind the data already queued.
		// While the kernel refuses more it stays pending, so that newer
		// pings replace it rather than pile up behind the blocked bytes.
		// Charged like any queued frame: the lending below takes the
		// whole queue off queued, and what is written is not given back,
		// so an uncharged pong would lower the count by its size each
		// time, and a client could ping its way past MaxQueueBytes.
		c.queue = append(c.queue, rawFrame(pong))
		c.queued += int32(len(pong))
		c.rare.pong = nil
	}
	for i := range c.queue {
		c.outBytes += int32(c.queue[i].size())
	}
	if c.respQueued {
		// out is empty: this is the connection's first flush.
		c.respQueued = false
		c.respOut = true
	}
	if len(c.out) == 0 {
		// Nothing is left to write: the queue's array becomes the write
		// list, and the write list's, empty, the queue's. Swapping spares
		// the copy, and a connection that was sent one frame since it
		// started holds one array, not two.
		c.out, c.queue = c.queue, c.out
		c.outSlack, c.queueSlack = c.queueSlack, c.outSlack
	} else {
		c.out = append(c.out, c.queue...)
		c.queue = recycle(c.queue, &c.queueSlack)
	}
	// Lend what is about to be written to the kernel: it stops counting
	// against MaxQueueBytes until writev has said how much it refused.
	// Counting it until writev returns would be wrong, because the client
	// can read those bytes before this goroutine runs again: writev wakes
	// the reader, and the loop is routinely descheduled on its way out of
	// the syscall. Meanwhile the client, having read everything, gets more
	// frames queued, and bytes it already holds would still be charged to
	// it: a client that keeps up would be cut off as slow (4100).
	c.queued -= c.outBytes
	closing := c.closing
	c.mu.Unlock()

	var werr error
	written := 0
	for int(c.outHead) < len(c.out) {
		iov := c.iovecs(iovs, scratch)
		n, err := writev(int(c.fd), iov)
		clear(iov) // drop the references to payloads for the collector
		if p.cfg.afterWrite != nil {
			p.cfg.afterWrite()
		}
		if n > 0 {
			written += n
			c.outBytes -= int32(n)
		}
		c.consume(max(n, 0))
		if err != nil {
			if err != unix.EAGAIN && err != unix.EINTR {
				werr = err
			}
			break
		}
	}
	if written > 0 {
		p.written.Add(uint64(written))
	}
	if c.outHead > 0 || c.outOff > 0 {
		c.respOut = false
	}
	if int(c.outHead) == len(c.out) {
		// Everything went out: reuse the slice from its start, unless a
		// burst grew it, in which case an idle connection should not keep it.
		c.out, c.outHead = recycle(c.out, &c.outSlack), 0
	}
	// What the kernel refused counts again.
	c.mu.Lock()
	c.queued += c.outBytes
	c.mu.Unlock()
	if werr != nil {
		p.shutdown(c, werr)
		return
	}
	if len(c.out) > 0 {
		// The kernel's buffer is full; wait for EPOLLOUT.
		if !c.wantWrite {
			c.wantWrite = true
			c.blockedSince = monoNow()
			p.modify(c, unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLOUT)
			c.armWriteTimer()
		} else if time.Duration(monoNow()-c.blockedSince) > p.cfg.WriteTimeout {
			p.shutdown(c, errors.New("write timeout"))
		}
		return
	}
	if c.wantWrite {
		c.wantWrite = false
		p.modify(c, unix.EPOLLIN|unix.EPOLLRDHUP)
		c.mu.Lock()
		pong := c.pendingPong() != nil
		c.mu.Unlock()
		if pong {
			// A pong held back while the socket was full can go now.
			p.flushWith(c, iovs, scratch)
			return
		}
	}
	// The close frame is the last frame ever queued, so once a flush that
	// started in the closing state has drained out, it has been written.
	if !closing {
		return
	}
	c.sentClose = true
	if c.peerClosed || c.failure() != nil {
		p.shutdown(c, c.closeErr())
		return
	}
	if !c.halfClosed {
		c.halfClosed = true
		// Half-close and give the client closeGrace to answer before the
		// socket is dropped.
		unix.Shutdown(int(c.fd), unix.SHUT_WR)
		c.mu.Lock()
		if c.rare != nil && c.rare.closeTimer != nil {
			c.rare.closeTimer.Reset(closeGrace)
		}
		c.mu.Unlock()
	}
}

func (p *poller) modify(c *pconn, events uint32) {
	if !c.registered {
		return // register sets the events
	}
	ev := unix.EpollEvent{Events: events, Fd: c.fd}
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_MOD, int(c.fd), &ev)
}

// shutdown closes c's socket and tells its handler. Only the loop calls it.
func (p *poller) shutdown(c *pconn, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.closing = true
	clear(c.queue)
	c.queue = nil
	c.queued = 0
	var timer, writeTimer *time.Timer
	if c.rare != nil {
		timer, writeTimer = c.rare.closeTimer, c.rare.writeTimer
		c.rare = nil
	}
	h := c.h
	c.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	if writeTimer != nil {
		writeTimer.Stop()
	}
	c.out, c.outHead, c.outOff, c.outBytes = nil, 0, 0, 0
	// A shut-down reader is done: shutdown may run inside feed (the
	// client's close frame, answering ours), whose loop must then stop
	// rather than go on with the rest of the read, past the close and
	// into buffers just released.
	c.reader = frameReader{done: true}
	unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	p.mu.Lock()
	p.remove(c)
	p.mu.Unlock()
	unix.Close(int(c.fd))
	if h != nil {
		h.HandleClose(err)
	}
}

// scratchSize is the size of a loop's scratch buffer, and mergeMax the
// longest payload copied into it.
const (
	scratchSize = 64 << 10
	mergeMax    = 256
)

// iovBuilder collects the iovecs of one writev. Every iovec costs the
// kernel a copy of its own, which for a 2-byte header or a 100-byte event
// is mostly overhead, so headers and small payloads are copied, in order,
// into scratch, where consecutive ones share one iovec; a larger payload
// gets an iovec pointing at the shared bytes. scratch is only the loop's
// for the duration of the writev, and never grows: iovecs point into it.
type iovBuilder struct {
	iov     []unix.Iovec
	scratch []byte
	open    bool // the last iovec ends at the end of scratch
}

// copy appends p to scratch and reports whether it fitted.
func (b *iovBuilder) copy(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	if cap(b.scratch)-len(b.scratch) < len(p) {
		return false
	}
	start := len(b.scratch)
	b.scratch = append(b.scratch, p...)
	if b.open {
		v := &b.iov[len(b.iov)-1]
		v.SetLen(int(v.Len) + len(p))
		return true
	}
	b.ref(b.scratch[start:])
	b.open = true
	return true
}

// ref appends an iovec pointing at p.
func (b *iovBuilder) ref(p []byte) {
	if len(p) == 0 {
		return
	}
	v := unix.Iovec{Base: &p[0]}
	v.SetLen(len(p))
	b.iov = append(b.iov, v)
	b.open = false
}

// iovecs fills iovs with what is left of out, as much as fits: a message
// is its header, in out itself, and its payload where the sender left it,
// shared with other connections; small ones are copied together into
// scratch (see iovBuilder). Only the loop calls it, or Start before it.
func (c *pconn) iovecs(iovs []unix.Iovec, scratch []byte) []unix.Iovec {
	b := iovBuilder{iov: iovs[:0], scratch: scratch[:0]}
	off := c.outOff
	for i := int(c.outHead); i < len(c.out) && len(b.iov)+2 <= len(iovs); i++ {
		c.out[i].appendTo(&b, off)
		off = 0
	}
	return b.iov
}

// appendTo adds what is left of f from byte off on.
func (f *outFrame) appendTo(b *iovBuilder, off int) {
	var hdr []byte
	if h := int(f.hlen); off < h {
		hdr = f.hdr[off:h]
		off = 0
	} else {
		off -= h
	}
	payload := f.payload()[off:]
	if len(payload) <= mergeMax && cap(b.scratch)-len(b.scratch) >= len(hdr)+len(payload) {
		b.copy(hdr)
		b.copy(payload)
		return
	}
	if !b.copy(hdr) {
		b.ref(hdr)
	}
	b.ref(payload)
}

// recycle empties a frame slice for reuse. A slice that a burst grew is kept
// while the traffic that grew it lasts, so bursts allocate nothing per
// connection, and dropped once it has been mostly unused for recycleAfter
// flushes in a row, so a connection whose traffic died down holds no large
// array. Dropping it at the first light flush would make fluctuating bursts
// regrow it again and again: allocations per subscriber. slack counts the
// light flushes; it is guarded like the slice it belongs to.
func recycle(q []outFrame, slack *uint8) []outFrame {
	n := len(q)
	clear(q)
	if cap(q) <= 16 || n >= cap(q)/4 {
		*slack = 0
		return q[:0]
	}
	if *slack++; *slack < recycleAfter {
		return q[:0]
	}
	*slack = 0
	return nil
}

const recycleAfter = 16

func writev(fd int, iov []unix.Iovec) (int, error) {
	if len(iov) == 0 {
		return 0, nil
	}
	n, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if errno != 0 {
		return int(n), errno
	}
	return int(n), nil
}

// pconn is a connection served by a poller. An idle connection is mostly
// this struct, so it is kept to 160 bytes (a test pins it): what only some
// connections ever need lives behind rare.
//
// Locking: mu guards the fields from h to closed, and queued; Send, Close
// and Abort may be called from any goroutine. The other fields after them
// belong to the poller's loop goroutine.
//
// Accounting: queued is the bytes of queue plus those of out the kernel has
// not taken (outBytes), headers included, except while flush is writing,
// when out's bytes are lent to the kernel and only queue counts. Both are
// 32-bit: Send keeps queued within MaxQueueBytes, at most 1 GiB (see
// Config), but for a few control frames of at most 127 bytes.
type pconn struct {
	p        *poller
	lastRead atomic.Int64

	mu           sync.Mutex
	h            Handler
	queue        []outFrame // frames not yet taken by the loop
	rare         *pconnRare // nil until a ping or a close needs it
	queueSlack   uint8      // light flushes in a row: see recycle
	scheduled    bool       // in the loop's todo list, or being flushed by Start
	started      bool       // Start was called: the loop may be asked to look
	pendingCarry bool       // bytes that came with the handshake await parsing
	respQueued   bool       // queue[0] is the handshake response
	closing      bool       // a close frame is queued
	dropOut      bool       // Abort: drop the frames of out not yet begun
	forceClose   bool       // drop the socket at the next look
	closed       bool       // socket closed, handler told

	// Loop-owned. The flags share a word with those above: each is a byte
	// of its own, so they do not race.
	outSlack   uint8 // light flushes in a row: see recycle
	respOut    bool  // out[0] is the handshake response, not yet begun
	sentClose  bool
	halfClosed bool
	wantWrite  bool
	registered bool // in epoll; set by Start before the loop can see c
	peerClosed bool

	queued   int32 // guarded by mu: bytes charged against MaxQueueBytes, see above
	outBytes int32 // bytes of out not yet written

	out []outFrame // frames being written: out[outHead] from byte outOff on
	// outHead is 32-bit, and fd shares its word: out holds fewer frames
	// than it holds bytes, which are fewer than MaxInt32 (see queued).
	outHead      int32
	fd           int32 // set by adopt, then read only
	outOff       int
	blockedSince int64 // monoNow when the kernel last refused bytes
	reader       frameReader
}

// pconnRare is the state of a connection that pinged or is closing.
type pconnRare struct {
	pong       []byte // a pong not yet taken by the loop: see queuePong
	closeTimer *time.Timer
	writeTimer *time.Timer // see armWriteTimer
	fatal      error       // the client error that failed the connection: see fail
}

// more returns c.rare, making it if need be. c.mu is held.
func (c *pconn) more() *pconnRare {
	if c.rare == nil {
		c.rare = &pconnRare{}
	}
	return c.rare
}

// pendingPong is the pong not yet taken by the loop, or nil. c.mu is held.
func (c *pconn) pendingPong() []byte {
	if c.rare == nil {
		return nil
	}
	return c.rare.pong
}

// monoStart anchors monoNow.
var monoStart = time.Now()

// monoNow is monotonic time in nanoseconds, immune to wall-clock steps.
func monoNow() int64 { return int64(time.Since(monoStart)) }

var _ Conn = (*pconn)(nil)

// Start implements Conn.
//
// Until Start registers the connection, no other goroutine touches its
// socket: Start writes what was queued before it (the handshake response
// and the first frames) itself, which spares the poller a wake-up per new
// connection. Work queued meanwhile waits for the loop, which is asked to
// look once the connection is registered.
// startIovecs holds the iovec arrays of first flushes: Start runs on
// whichever goroutine accepted the connection, and an array of its own
// would escape to the heap, an allocation per connection.
var startIovecs = sync.Pool{New: func() any { return new([8]unix.Iovec) }}

func (c *pconn) Start(h Handler) {
	c.mu.Lock()
	c.h = h
	c.started = true
	c.scheduled = true // Start is flushing: senders need not ask the loop
	closed := c.closed
	c.mu.Unlock()
	if closed {
		h.HandleClose(ErrClosed)
		return
	}
	iovs := startIovecs.Get().(*[8]unix.Iovec)
	c.p.flushWith(c, iovs[:], nil)
	startIovecs.Put(iovs)
	if c.isClosed() {
		return // the flush failed, and the handler has been told
	}
	// The handshake's frames are out: their arrays, sized for them, go.
	// Most connections are sent little after their start, and an idle one
	// should not keep them.
	if len(c.out) == 0 {
		c.out = nil // the loop does not see c before register
	}
	// Decide before registering: from then on the reader is the loop's.
	// Frames that arrived with the handshake are marked for parsing before
	// the loop can see the socket, too: it may find the client's FIN
	// before Start asks it to look, and must parse them first (readEOF).
	early := len(c.reader.carry()) > 0
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.queue = nil
	}
	c.pendingCarry = early
	c.mu.Unlock()
	if err := c.p.register(c); err != nil {
		c.mu.Lock()
		c.scheduled = false
		c.mu.Unlock()
		c.forceShutdown()
		return
	}
	c.mu.Lock()
	c.scheduled = false
	// Frames that arrived with the handshake are parsed without waiting for
	// the next read.
	sched := (early || len(c.queue) > 0 || c.forceClose) && c.needsLoop()
	c.mu.Unlock()
	if sched {
		c.p.schedule(c)
	}
}

// LastRead implements Conn.
func (c *pconn) LastRead() time.Time { return time.Unix(0, c.lastRead.Load()) }

// Send implements Conn: payload is queued as a text message, behind a
// header of the connection's own, and written in place.
func (c *pconn) Send(payload []byte) error {
	if uint64(len(payload)) > maxPayload {
		return ErrQueueFull
	}
	f := textFrame(payload)
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	if int(c.queued)+f.size() > c.p.cfg.MaxQueueBytes {
		c.mu.Unlock()
		return ErrQueueFull
	}
	c.queue = append(c.queue, f)
	c.queued += int32(f.size())
	sched := c.needsLoop()
	c.mu.Unlock()
	if sched {
		c.p.schedule(c)
	}
	return nil
}

// Close implements Conn.
func (c *pconn) Close(code int, reason string) { c.close(code, reason, false) }

// Abort implements Conn.
func (c *pconn) Abort(code int, reason string) { c.close(code, reason, true) }

func (c *pconn) close(code int, reason string, drop bool) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	if drop {
		// The handshake response stays: without it nothing after it
		// makes sense to the client.
		keep := 0
		if c.respQueued {
			keep = 1
		}
		for i := keep; i < len(c.queue); i++ {
			c.queued -= int32(c.queue[i].size())
		}
		clear(c.queue[keep:])
		c.queue = c.queue[:keep]
		// Frames the loop has taken but not begun to write go too.
		c.dropOut = true
	} else if pong := c.pendingPong(); pong != nil {
		// A ping that came before the close is answered before it.
		c.queue = append(c.queue, rawFrame(pong))
		c.queued += int32(len(pong))
	}
	if c.rare != nil {
		c.rare.pong = nil
	}
	cf := closeFrame(code, reason)
	c.queue = append(c.queue, rawFrame(cf))
	c.queued += int32(len(cf))
	// Whatever happens on the wire, the socket is gone by then.
	c.more().closeTimer = time.AfterFunc(c.p.cfg.WriteTimeout+closeGrace, c.forceShutdown)
	sched := c.needsLoop()
	c.mu.Unlock()
	if sched {
		c.p.schedule(c)
	}
}

// armWriteTimer has the loop look at c once the write timeout has passed
// since the kernel began refusing its bytes: the flush that finds the
// socket still full then drops it. Without it only the next frame queued
// for c would have the loop look, and a client that never reads, sent
// nothing more, would keep its connection, and what is queued for it,
// for as long as it liked. Only a connection that fills its socket gets
// the timer, once; each time it fills it again the timer is reset. Only
// the loop calls it, or Start before it.
func (c *pconn) armWriteTimer() {
	c.mu.Lock()
	if r := c.more(); r.writeTimer == nil {
		r.writeTimer = time.AfterFunc(c.p.cfg.WriteTimeout, c.recheck)
	} else {
		r.writeTimer.Reset(c.p.cfg.WriteTimeout)
	}
	c.mu.Unlock()
}

// recheck has the loop flush c, which checks the write timeout.
func (c *pconn) recheck() {
	c.mu.Lock()
	sched := !c.closed && c.needsLoop()
	c.mu.Unlock()
	if sched {
		c.p.schedule(c)
	}
}

// forceShutdown has the loop drop the socket at its next look.
func (c *pconn) forceShutdown() {
	c.mu.Lock()
	c.forceClose = true
	c.closing = true
	sched := c.needsLoop()
	c.mu.Unlock()
	if sched {
		c.p.schedule(c)
	}
}

// needsLoop reports whether the caller, having queued work for c, must ask
// the loop to look at c: not if c is already in line, nor before Start,
// which does the first flush itself. c.mu is held.
func (c *pconn) needsLoop() bool {
	if !c.started || c.scheduled {
		return false
	}
	c.scheduled = true
	return true
}

func (c *pconn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// failure is the client error that failed the connection, or nil.
func (c *pconn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rare == nil {
		return nil
	}
	return c.rare.fatal
}

func (c *pconn) closeErr() error {
	if err := c.failure(); err != nil {
		return err
	}
	return io.EOF
}

// dropUnwritten drops the frames of out the client has seen nothing of,
// keeping a partly written one, which must be finished for the stream to
// stay parseable. It returns the bytes dropped. Only the loop calls it.
func (c *pconn) dropUnwritten() int {
	keep := int(c.outHead)
	if c.outOff > 0 || c.respOut {
		keep++
	}
	if keep >= len(c.out) {
		return 0
	}
	dropped := 0
	for i := keep; i < len(c.out); i++ {
		dropped += c.out[i].size()
	}
	clear(c.out[keep:])
	c.out = c.out[:keep]
	c.outBytes -= int32(dropped)
	return dropped
}

// consume drops n written bytes from the front of out, and any empty
// frames they reach.
func (c *pconn) consume(n int) {
	for int(c.outHead) < len(c.out) {
		rest := c.out[c.outHead].size() - c.outOff
		if n < rest {
			c.outOff += n
			return
		}
		n -= rest
		c.out[c.outHead] = outFrame{}
		c.outHead++
		c.outOff = 0
	}
}

// The frameSink methods run on the loop goroutine, from feed.

func (c *pconn) message(data []byte) {
	if c.h != nil {
		c.h.HandleMessage(data)
	}
}

func (c *pconn) ping(payload []byte) { c.queuePong(appendFrame(nil, opPong, payload)) }

func (c *pconn) peerClose(code int) {
	c.peerClosed = true
	c.Close(code, "")
	if c.sentClose {
		c.p.shutdown(c, io.EOF)
	}
}

// fail fails the connection on a client error with the matching close
// code; the socket goes once the close frame is out. Only the loop calls
// it.
func (c *pconn) fail(err error) {
	// A failed connection is rare, so its error waits in pconnRare
	// rather than taking two words of every connection.
	c.mu.Lock()
	c.more().fatal = err
	c.mu.Unlock()
	code, reason := CloseCodeFor(err)
	c.Close(code, reason)
	if c.sentClose {
		c.p.shutdown(c, err)
	}
}

// queuePong answers a ping. A pong the loop has not taken yet is replaced
// rather than joined (RFC 6455 §5.5.3 lets an endpoint answer only the
// latest ping), so a client that floods pings and never reads holds one
// pending pong, not one per ping; and none is queued once the client is a
// full queue behind.
func (c *pconn) queuePong(frame []byte) {
	c.mu.Lock()
	if c.closing || int(c.queued)+len(frame) > c.p.cfg.MaxQueueBytes {
		c.mu.Unlock()
		return
	}
	c.more().pong = frame
	sched := c.needsLoop()
	c.mu.Unlock()
	if sched {
		c.p.schedule(c)
	}
}
