package hub

import (
	"regexp"
	"testing"
	"unsafe"
)

// Every idle connection holds a Conn: a field added carelessly moves it to
// a larger size class, for every connection.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 96 {
		t.Errorf("Conn is %d bytes, want at most 96", n)
	}
}

// Socket ids live in the Conn's own bytes: each keeps the Pusher form,
// differs from the others, and stays whole however far the sequence went.
func TestSocketIDsFitTheirRecord(t *testing.T) {
	h := newHub()
	form := regexp.MustCompile(`^[0-9]{1,9}\.[0-9]{1,13}$`)
	seen := map[string]bool{}
	for i, seq := range []uint64{0, 1, 1e9 - 1, 1e13 - 2, 1e13 - 1, 1<<64 - 2} {
		h.conns.mu.Lock()
		h.conns.seq = seq
		h.conns.mu.Unlock()
		c, err := h.Admit("app", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		id := c.SocketID()
		if !form.MatchString(id) {
			t.Errorf("conn %d (seq %d): socket id %q is not digits.digits", i, seq+1, id)
		}
		if seen[id] {
			t.Errorf("conn %d: socket id %q repeats", i, id)
		}
		seen[id] = true
	}
}
