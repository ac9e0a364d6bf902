package wsconn

import (
	"bytes"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestIovecsResumeAnywhere: after a write that ended at any byte of the
// queued stream, headers and merged runs included, the next writev's
// iovecs hold exactly the rest of the stream, whether small frames fit
// the scratch buffer or not.
func TestIovecsResumeAnywhere(t *testing.T) {
	frames := []outFrame{rawFrame([]byte("HTTP/1.1 101 ...\r\n\r\n"))}
	for i, n := range []int{0, 1, 125, 126, mergeMax, mergeMax + 1, 70000, 5, 3} {
		frames = append(frames, textFrame(patterned(i, n)))
	}
	frames = append(frames, rawFrame(closeFrame(CloseNormal, "bye")))
	var stream []byte
	var bigFrom, bigTo int // the long payload, whose middle is skipped
	for _, f := range frames {
		stream = append(stream, f.hdr[:f.hlen]...)
		if f.n > 1000 {
			bigFrom, bigTo = len(stream)+3, len(stream)+int(f.n)-3
		}
		stream = append(stream, f.payload()...)
	}
	iovs := make([]unix.Iovec, maxIovecs)
	var got []byte
	for _, scratch := range []int{0, 7, 300, scratchSize} {
		buf := make([]byte, 0, scratch)
		for k := 0; k <= len(stream); k++ {
			if k == bigFrom {
				k = bigTo
			}
			c := &pconn{out: append([]outFrame(nil), frames...)}
			c.consume(k)
			got = got[:0]
			for _, v := range c.iovecs(iovs, buf) {
				if v.Len == 0 {
					t.Fatalf("scratch %d, offset %d: an empty iovec", scratch, k)
				}
				got = append(got, unsafe.Slice(v.Base, v.Len)...)
			}
			if !bytes.Equal(got, stream[k:]) {
				t.Fatalf("scratch %d, offset %d: iovecs hold %d bytes, not the %d left of the stream", scratch, k, len(got), len(stream)-k)
			}
		}
	}
}
