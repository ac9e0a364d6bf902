package hub

import (
	"fmt"
	"regexp"
	"testing"
	"unsafe"
)

// Every idle connection holds a Conn: a field added carelessly moves it to
// a larger size class, for every connection.
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 80 {
		t.Errorf("Conn is %d bytes, want at most 80", n)
	}
}

// Socket ids live in the Conn's own bytes: each keeps the Pusher form,
// differs from the others, and stays whole however far the sequence went.
func TestSocketIDsFitTheirRecord(t *testing.T) {
	h := newHub()
	form := regexp.MustCompile(`^[0-9]{1,9}\.[0-9]{1,9}$`)
	seen := map[string]bool{}
	for i, seq := range []uint64{0, 1, 1e9 - 3, 1e9 - 2, 1e9 - 1, 1<<64 - 2} {
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

// The registry keeps its connections in a slice, each knowing its slot: a
// leaver's slot goes to the last one, and every index must stay right
// whatever order they leave in.
func TestRegistrySlotsFollowLeavers(t *testing.T) {
	h := newHub()
	var conns []*Conn
	for range 6 {
		c, err := h.Admit("app", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	check := func(when string, want int) {
		t.Helper()
		h.conns.mu.Lock()
		defer h.conns.mu.Unlock()
		if len(h.conns.all) != want || h.conns.byApp["app"].count() != want {
			t.Fatalf("%s: %d in the registry, %d counted for the app, want %d", when, len(h.conns.all), h.conns.byApp["app"].count(), want)
		}
		for i, c := range h.conns.all {
			if int(c.at) != i {
				t.Fatalf("%s: slot %d holds a conn that thinks it is at %d", when, i, c.at)
			}
		}
	}
	for i, k := range []int{2, 0, 5, 3, 3, 1, 4} { // 3 twice: later calls do nothing
		conns[k].Closed(ReasonRefused)
		left := 5 - i
		if i >= 4 {
			left++
		}
		check(fmt.Sprintf("after conn %d left", k), left)
	}
}
