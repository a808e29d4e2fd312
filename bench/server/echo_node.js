// SPDX-License-Identifier: MIT
// Node.js echo server for bench/run_server.sh: 'data' -> socket.write (no pipe, no copy).
//
//   node echo_node.js [host] [port]          echo
//   node echo_node.js --http [host] [port]   the http module's "Hello, World!" (for wrk)
'use strict';
const net = require('net');
const http = require('http');

const args = process.argv.slice(2);
const httpMode = args[0] === '--http';
if (httpMode) args.shift();
const host = args[0] || '127.0.0.1';
const port = Number(args[1] || 8888);

let server;
if (httpMode) {
  server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 13 });
    res.end('Hello, World!');
  });
} else {
  server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (data) => socket.write(data));
    socket.on('error', () => socket.destroy());
  });
}
server.listen({ host, port, backlog: 1024 }, () => {
  console.log(`Serving on ${host}:${port}`);
});
