package redisstore_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-sessions/steward/engine"
	"github.com/steward-sessions/steward/internal/redistest"
	"github.com/steward-sessions/steward/storage"
	"github.com/steward-sessions/steward/storage/redisstore"
	"github.com/steward-sessions/steward/storage/storagetest"
)

// startCluster starts a Redis Cluster of three masters for t and returns
// its nodes.
func startCluster(t *testing.T) []*redistest.Server {
	t.Helper()
	cli := filepath.Join(filepath.Dir(redistest.Binary(t)), "redis-cli")
	if _, err := exec.LookPath(cli); err != nil {
		if cli, err = exec.LookPath("redis-cli"); err != nil {
			t.Skip("redis-cli not found: the Redis Cluster test is skipped")
		}
	}
	nodes := make([]*redistest.Server, 3)
	args := []string{"create"}
	for i := range nodes {
		// A long node timeout: on a loaded machine a node that answers late
		// must not be voted failed (CLUSTERDOWN) in the middle of the test.
		nodes[i] = redistest.Start(t, "--cluster-enabled", "yes", "--cluster-node-timeout", "30000")
		args = append(args, nodes[i].Addr())
	}
	args = append([]string{"--cluster"}, append(args, "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range nodes {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			info, _ := n.Do(context.Background(), "CLUSTER", "INFO").ToString()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cluster is not ready after 30 s: %s", info)
			}
		}
	}
	return nodes
}

// TestCluster runs a Store on a Redis Cluster of three masters: the
// conformance suite, and three engine instances counting without loss,
// with sessions spread over every node.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	// rueidis's cluster client, when closed, leaves a goroutine that sleeps
	// up to a second and then gives up (a topology refresh scheduled by the
	// closing connections); wait for it here, so that goleak still checks
	// everything else strictly.
	t.Cleanup(func() {
		for deadline := time.Now().Add(5 * time.Second); libraryGoroutines("rueidis.(*call).DelayDo") > 0; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Error("rueidis's cluster refresh goroutine outlived Close by 5 s")
				return
			}
		}
	})
	nodes := startCluster(t)
	url := nodes[0].URL() // one node: the rest is discovered
	open := func(t *testing.T, prefix string) *redisstore.Store {
		s, err := redisstore.New(t.Context(), url, redisstore.Options{Prefix: prefix, LocalReads: true})
		if err != nil {
			t.Fatal(err)
		}
		if s.LocalReads() {
			t.Fatal("LocalReads() on a Cluster: its reads must ask Redis")
		}
		t.Cleanup(func() { s.Close() })
		return s
	}

	t.Run("Conformance", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Storage { return open(t, prefixFor(t)) })
	})

	t.Run("Spread", func(t *testing.T) {
		s := open(t, prefixFor(t))
		for i := range 100 {
			if _, _, _, err := s.SaveIf(t.Context(), fmt.Sprintf("s%d", i), []byte("x"), time.Time{}, 0); err != nil {
				t.Fatal(err)
			}
		}
		for i, n := range nodes {
			if keys, err := n.Do(t.Context(), "DBSIZE").AsInt64(); err != nil || keys == 0 {
				t.Errorf("node %d holds %d keys (%v): the sessions are not spread", i, keys, err)
			}
		}
	})

	t.Run("Instances", func(t *testing.T) {
		prefix := prefixFor(t)
		kinds := make([]*engine.RawKind, 3)
		for i := range kinds {
			st := open(t, prefix)
			e, err := engine.New(engine.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close(context.Background()) })
			if kinds[i], err = engine.RegisterRaw(e, "counter", engine.KindOptions{Storage: st}); err != nil {
				t.Fatal(err)
			}
		}
		ids := make([]string, 6)
		for i := range ids {
			var err error
			if ids[i], err = kinds[i%3].Create(t.Context(), []byte("0")); err != nil {
				t.Fatal(err)
			}
		}
		const clients, increments = 24, 50
		errs := make(chan error, clients)
		var wg sync.WaitGroup
		for c := range clients {
			wg.Go(func() {
				for i := range increments {
					if _, err := kinds[(c+i)%3].Update(t.Context(), ids[c%len(ids)], increment); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, id := range ids {
			if n := count(t, kinds[0], id); n != clients/len(ids)*increments {
				t.Errorf("count %d, want %d", n, clients/len(ids)*increments)
			}
		}
	})
}

// libraryGoroutines counts the goroutines whose stack mentions fn.
func libraryGoroutines(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			n++
		}
	}
	return n
}
