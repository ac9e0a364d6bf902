//go:build !linux

package bench

import (
	"errors"
	"time"
)

const epollSupported = false

type epollReader struct{ goroutineReader }

func newEpollReader(int, int, []*shard) (*epollReader, error) {
	return nil, errors.New("the epoll reader needs Linux; use --reader goroutine")
}

func writeFD(int, []byte, time.Duration) error { return errors.New("no descriptors off Linux") }
func closeFD(int, bool)                        {}
func setRecvBuffer(uintptr, int) error         { return nil }
func bindAddressNoPort(uintptr) error          { return nil }
