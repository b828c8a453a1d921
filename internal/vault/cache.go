package vault

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Option configures a Vault.
type Option func(*Vault)

// WithKeyCache keeps each data key this process generates or opens in memory for
// ttl (at most max keys), so the next step of the same order (the invoice right
// after the seal) opens it without a KMS call. The default, no option, is no
// cache: every OpenDataKey calls KMS. Keys are zeroed on eviction; Forget evicts
// an order's key at once when it is erased.
func WithKeyCache(ttl time.Duration, max int) Option {
	return func(v *Vault) {
		if ttl > 0 && max > 0 {
			v.cache = &keyCache{ttl: ttl, max: max, entries: map[string]*cachedKey{}, now: time.Now}
		}
	}
}

type cachedKey struct {
	key      [keySize]byte
	kmsKeyID string
	expires  time.Time
}

type keyCache struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	entries map[string]*cachedKey
	now     func() time.Time
}

func cacheKey(c Context, wrapped []byte) string {
	sum := sha256.Sum256(wrapped)
	return c.OrderID + "\x00" + c.Purpose + "\x00" + string(sum[:])
}

func (kc *keyCache) get(c Context, wrapped []byte) (*cachedKey, bool) {
	if kc == nil {
		return nil, false
	}
	kc.mu.Lock()
	defer kc.mu.Unlock()
	e, ok := kc.entries[cacheKey(c, wrapped)]
	if !ok || !kc.now().Before(e.expires) {
		return nil, false
	}
	cp := *e
	return &cp, true
}

func (kc *keyCache) put(c Context, wrapped, plaintext []byte, kmsKeyID string) {
	if kc == nil {
		return
	}
	kc.mu.Lock()
	defer kc.mu.Unlock()
	now := kc.now()
	if len(kc.entries) >= kc.max {
		var oldest string
		for k, e := range kc.entries {
			if !now.Before(e.expires) {
				kc.drop(k)
			} else if oldest == "" || e.expires.Before(kc.entries[oldest].expires) {
				oldest = k
			}
		}
		if len(kc.entries) >= kc.max && oldest != "" {
			kc.drop(oldest)
		}
	}
	e := &cachedKey{kmsKeyID: kmsKeyID, expires: now.Add(kc.ttl)}
	copy(e.key[:], plaintext)
	kc.entries[cacheKey(c, wrapped)] = e
}

// forget drops every cached key of the context, whatever its wrapped form.
func (kc *keyCache) forget(c Context) {
	if kc == nil {
		return
	}
	prefix := c.OrderID + "\x00" + c.Purpose + "\x00"
	kc.mu.Lock()
	defer kc.mu.Unlock()
	for k := range kc.entries {
		if len(k) > len(prefix) && k[:len(prefix)] == prefix {
			kc.drop(k)
		}
	}
}

func (kc *keyCache) drop(k string) {
	clear(kc.entries[k].key[:])
	delete(kc.entries, k)
}

// Forget evicts an order's cached data key for the purpose: call it when the key
// is destroyed, so no copy outlives the erasure in this process.
func (v *Vault) Forget(c Context) { v.cache.forget(c) }
