package hub

import (
	"sync"
	"sync/atomic"

	"github.com/heraldhq/herald/internal/broker"
)

// Encoding identifies one front end's wire format. Each publication caches
// its encoded payload per encoding, so an event is encoded once per
// protocol, however many subscribers receive it and whatever transport
// frames it for each of them.
type Encoding uint8

const (
	EncodingPusher Encoding = iota
	// EncodingCentrifugo is the Centrifugo client protocol's JSON push.
	EncodingCentrifugo
	// numEncodings leaves room for the other protocol front ends.
	numEncodings = 2
)

// Publication is one event on its way to local subscribers.
type Publication struct {
	broker.Message
	payloads [numEncodings]encodedPayload
}

type encodedPayload struct {
	ready atomic.Pointer[[]byte]
	mu    sync.Mutex
}

// Payload returns the publication's message payload in encoding e, building
// it with build the first time any subscriber asks. Every later caller gets
// the same bytes; they must not be modified. The payload is the message
// alone: each subscriber's transport frames it.
func (p *Publication) Payload(e Encoding, build func(*broker.Message) []byte) []byte {
	f := &p.payloads[e]
	if b := f.ready.Load(); b != nil {
		return *b
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if b := f.ready.Load(); b != nil {
		return *b
	}
	b := build(&p.Message)
	f.ready.Store(&b)
	return b
}
