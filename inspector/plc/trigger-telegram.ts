/**
 * The trigger telegram: how the line tells the camera "part (Epoch, PartId) is
 * under you now". One UDP datagram per part, sent by the PLC when its photo-eye
 * fires, received by the station's capture worker (inspector/capture/trigger-input.ts).
 *
 * This is the Cognex "Trigger ID" convention carried on the wire a real line uses
 * for a software trigger: the PLC owns the part number, the vision system returns
 * it with the result (plc-contract.ts), so a restart of either side cannot shift
 * the numbering: after a PLC restart the Epoch changes and every result of the
 * old epoch is refused; after a station restart the next trigger carries the
 * PLC's next id, whatever the station counted before.
 *
 * Layout (16 bytes, big-endian):  magic 'IIT1' | Epoch u32 | PartId u32 | item u32
 * `item` is the simulated line's knowledge of which physical part it is (the
 * replay camera photographs image `item` of its folder); a real camera ignores it.
 * No node-opcua import: the capture worker loads this.
 */
export const TRIGGER_MAGIC = 0x49495431; // 'IIT1'
export const TRIGGER_BYTES = 16;

export interface TriggerTelegram {
  epoch: number;
  partId: number;
  item: number;
}

/** Encode into `out` (16 bytes; default a new buffer). A buffer given to dgram's send() must not be reused before its callback: send does not copy. */
export function encodeTrigger(t: TriggerTelegram, out: Buffer = Buffer.allocUnsafe(TRIGGER_BYTES)): Buffer {
  out.writeUInt32BE(TRIGGER_MAGIC, 0);
  out.writeUInt32BE(t.epoch >>> 0, 4);
  out.writeUInt32BE(t.partId >>> 0, 8);
  out.writeUInt32BE(t.item >>> 0, 12);
  return out;
}

/** Decode a datagram; null when it is not a trigger telegram (wrong size or magic, epoch or id 0). */
export function decodeTrigger(buf: Buffer): TriggerTelegram | null {
  if (buf.length !== TRIGGER_BYTES || buf.readUInt32BE(0) !== TRIGGER_MAGIC) return null;
  const epoch = buf.readUInt32BE(4);
  const partId = buf.readUInt32BE(8);
  if (epoch === 0 || partId === 0) return null;
  return { epoch, partId, item: buf.readUInt32BE(12) };
}
