//go:build linux

package wsconn

import "testing"

// The loop finds connections by fd in a slice: a descriptor reused by a
// new connection must not be unregistered by the old one's late close.
func TestPollerFDTable(t *testing.T) {
	p := &poller{}
	a, b, c := &pconn{fd: 7}, &pconn{fd: 7}, &pconn{fd: 3}
	if got := p.lookup(7); got != nil {
		t.Fatalf("empty table: lookup(7) = %p", got)
	}
	p.insert(a)
	p.insert(c)
	if p.lookup(7) != a || p.lookup(3) != c || p.nconns != 2 {
		t.Fatalf("after inserts: lookup(7)=%p lookup(3)=%p nconns=%d", p.lookup(7), p.lookup(3), p.nconns)
	}
	p.remove(a)
	p.insert(b)
	p.remove(a) // a's descriptor now belongs to b
	if p.lookup(7) != b || p.nconns != 2 {
		t.Fatalf("stale remove: lookup(7)=%p nconns=%d, want b and 2", p.lookup(7), p.nconns)
	}
	p.remove(b)
	p.remove(c)
	if p.lookup(7) != nil || p.lookup(3) != nil || p.nconns != 0 {
		t.Fatalf("after removes: nconns=%d", p.nconns)
	}
	if p.lookup(-1) != nil || p.lookup(1<<20) != nil {
		t.Fatal("out-of-range fds must find nothing")
	}
}
