/** Part loops in unit tests: parts numbered by a line in `epoch` (default 1), whose numbering the (stub) PLC has confirmed. */
import { PartIdentity } from '../../inspector/station/part-identity.js';

export function lineIdentity(epoch = 1): PartIdentity {
  const id = new PartIdentity('trigger');
  id.onSync(epoch, 0);
  return id;
}
