//go:build linux

package wsconn

import (
	"testing"
	"unsafe"
)

// An idle connection's memory is mostly its pconn: a field added carelessly
// moves it to a larger size class, for every connection.
func TestPconnSize(t *testing.T) {
	if n := unsafe.Sizeof(pconn{}); n > 256 {
		t.Errorf("pconn is %d bytes, want at most 256", n)
	}
}
