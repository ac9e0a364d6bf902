package bench

import (
	"sync"
	"time"
)

// reader serves established connections: it reads them, parses their frames
// and feeds their scenario until closed.
type reader interface {
	name() string
	// adopt starts reading c; the dialing goroutine gives c up.
	adopt(c *conn) error
	// close stops reading; connections stay open for the caller to close.
	close()
}

// goroutineReader reads each connection in a goroutine of its own, with a
// buffer of its own: simple, portable, and several times the memory of the
// epoll reader per connection.
type goroutineReader struct {
	shards  []*shard
	bufSize int
	wg      sync.WaitGroup
	mu      sync.Mutex
	conns   []*conn
	stopped bool
}

func newGoroutineReader(shards []*shard, bufSize int) *goroutineReader {
	return &goroutineReader{shards: shards, bufSize: bufSize}
}

func (r *goroutineReader) name() string { return "goroutine" }

func (r *goroutineReader) adopt(c *conn) error {
	r.mu.Lock()
	r.conns = append(r.conns, c)
	r.mu.Unlock()
	sh := r.shards[c.id%len(r.shards)]
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, r.bufSize)
		for {
			n, err := c.nc.Read(buf)
			if n > 0 {
				if ferr := c.feed(buf[:n], time.Now().UnixNano(), sh); ferr != nil && err == nil {
					err = ferr
				}
			}
			if err != nil {
				r.mu.Lock()
				stopped := r.stopped
				r.mu.Unlock()
				if !stopped {
					sh.closed.Add(1)
				}
				c.close(true)
				return
			}
		}
	}()
	return nil
}

// close unblocks every reading goroutine by closing its connection (readers
// of a goroutine each cannot be stopped otherwise) and waits for them.
func (r *goroutineReader) close() {
	r.mu.Lock()
	r.stopped = true
	conns := r.conns
	r.mu.Unlock()
	for _, c := range conns {
		c.close(true)
	}
	r.wg.Wait()
}
