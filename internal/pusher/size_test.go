package pusher

import (
	"testing"
	"unsafe"
)

// Every connection holds a Session: a field added carelessly moves it to a
// larger size class, for every connection.
func TestSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(Session{}); n > 128 {
		t.Errorf("Session is %d bytes, want at most 128", n)
	}
}
