// One worker thread that loads gstreamer-superficial and, on each message, builds a pipeline
// and looks its appsink up with findChild() (what the capture worker does at every (re)start).
const { parentPort } = require('node:worker_threads');
const gst = require('gstreamer-superficial');

parentPort.on('message', () => {
  const p = new gst.Pipeline('videotestsrc num-buffers=1 ! appsink name=sink');
  const sink = p.findChild('sink');
  parentPort.postMessage(sink && typeof sink.pull === 'function' ? 'appsink' : 'missing');
});
