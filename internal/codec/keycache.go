package codec

import (
	"container/list"
	"sync"
)

// keyCache is a bounded LRU of unwrapped data keys, keyed by a hash of the KMS
// key id and the wrapped key. An entry being unwrapped is in the cache already,
// so concurrent decoders of the same key wait for one KMS call; a failed unwrap
// is removed, so the next decode asks KMS again.
type keyCache struct {
	mu      sync.Mutex
	max     int
	order   *list.List // of *cacheEntry, most recently used first
	entries map[[32]byte]*list.Element
}

type cacheEntry struct {
	hash  [32]byte
	ready chan struct{} // closed when key or err is set
	key   *dataKey
	err   error
}

func newKeyCache(max int) *keyCache {
	return &keyCache{max: max, order: list.New(), entries: map[[32]byte]*list.Element{}}
}

// acquire returns the entry for h. owner is true when the caller created it and
// must call complete; others wait on entry.ready.
func (c *keyCache) acquire(h [32]byte) (e *cacheEntry, owner bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[h]; ok {
		c.order.MoveToFront(el)
		return el.Value.(*cacheEntry), false
	}
	e = &cacheEntry{hash: h, ready: make(chan struct{})}
	c.entries[h] = c.order.PushFront(e)
	c.evict()
	return e, true
}

// complete publishes the outcome of an unwrap; a failure leaves no entry behind.
func (c *keyCache) complete(h [32]byte, e *cacheEntry, k *dataKey, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.key, e.err = k, err
	close(e.ready)
	if err != nil {
		if el, ok := c.entries[h]; ok && el.Value.(*cacheEntry) == e {
			c.order.Remove(el)
			delete(c.entries, h)
		}
	}
}

// put adds a key this process generated (it needs no unwrapping).
func (c *keyCache) put(h [32]byte, k *dataKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[h]; ok {
		c.order.MoveToFront(el)
		return
	}
	e := &cacheEntry{hash: h, ready: make(chan struct{}), key: k}
	close(e.ready)
	c.entries[h] = c.order.PushFront(e)
	c.evict()
}

// len is the number of cached keys (tests).
func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

func (c *keyCache) evict() {
	for c.order.Len() > c.max {
		el := c.order.Back()
		c.order.Remove(el)
		delete(c.entries, el.Value.(*cacheEntry).hash)
	}
}
