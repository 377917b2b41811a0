package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/alexedwards/scs/goredisstore"
	"github.com/alexedwards/scs/v2"
	"github.com/redis/go-redis/v9"

	"github.com/steward-sessions/steward/storage/redisstore"
)

// redisEnv names the environment variable that tells the servers of
// steward-redis, steward-redis-local and scs-redis where Redis is: the
// parent starts one redis-server for the whole run (or takes the URL given
// in it) and every Redis system uses that same server.
const redisEnv = "STEWARD_BENCH_REDIS"

// redisMissing says why the Redis systems cannot run, "" if they can.
func redisMissing() string {
	if os.Getenv(redisEnv) != "" {
		return ""
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		return "redis-server is not installed (apt-get install -y redis-server)"
	}
	return ""
}

// startRedis starts a redis-server on a free loopback port, persistence
// off, for the run, and returns its URL and a function that stops it.
func startRedis() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir, err := os.MkdirTemp("", "steward-bench-redis-")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		os.RemoveAll(dir)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server on %s did not start", addr)
		}
	}
	return "redis://" + addr, stop, nil
}

// steward-redis: Steward's Redis storage (compare-and-set writes).
func buildStewardRedis(so serverOptions) (built, error) {
	return buildStewardRedisWith(so, redisstore.Options{Prefix: "bench:steward:"})
}

// steward-redis-local: the same, with coherent local reads
// (redisstore.Options.LocalReads).
func buildStewardRedisLocal(so serverOptions) (built, error) {
	return buildStewardRedisWith(so, redisstore.Options{Prefix: "bench:steward-local:", LocalReads: true})
}

func buildStewardRedisWith(so serverOptions, opts redisstore.Options) (built, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	store, err := redisstore.New(ctx, os.Getenv(redisEnv), opts)
	if err != nil {
		return built{}, err
	}
	return stewardBuilt(so, store)
}

// scs-redis: scs's go-redis store, through its LoadAndSave middleware.
func buildSCSRedis(serverOptions) (built, error) {
	opts, err := redis.ParseURL(os.Getenv(redisEnv))
	if err != nil {
		return built{}, err
	}
	client := redis.NewClient(opts)
	sm := scs.New()
	sm.Store = goredisstore.New(client)
	return built{handler: scsCounter(sm), close: client.Close}, nil
}
