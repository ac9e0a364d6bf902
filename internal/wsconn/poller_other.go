//go:build !linux

package wsconn

import (
	"errors"
	"net"
)

const defaultTransport = TransportGoroutine

type pollerSet struct{}

func newPollerSet(Config) (*pollerSet, error) {
	return nil, errors.New("the epoll transport needs Linux; use the goroutine transport")
}

func (*pollerSet) adopt(net.Conn, []byte, []byte) (Conn, error) {
	return nil, errors.New("unsupported")
}
func (*pollerSet) adoptFD(int, []byte, []byte) Conn { panic("unsupported") }
func (*pollerSet) close()                           {}
func (*pollerSet) bytesWritten() uint64             { return 0 }
