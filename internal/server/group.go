package server

import "sync"

// group owns the server's long-lived goroutines: each is started through
// Go, and shutdown waits for all of them (Wait) after stopping what they
// serve. Connection-scoped goroutines belong to their transport and the
// hub; this is for listeners and background loops.
type group struct {
	wg sync.WaitGroup
}

// Go runs fn on a goroutine the group owns.
func (g *group) Go(fn func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		fn()
	}()
}

// Wait returns once every goroutine started by Go has returned.
func (g *group) Wait() { g.wg.Wait() }
