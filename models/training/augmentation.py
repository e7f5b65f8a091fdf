"""Training-time augmentation of a batch of preprocessed images and their cell targets (all seeded by one generator):
copy-pasted defects (--paste, optionally moved: --paste-move), fixed-scale crops (--crop-size), random anisotropic zoom (--zoom), and
flips/transposes, resized crops (--crop), contrast, gain and offset jitter (augment)."""
import numpy as np
import torch
import torch.nn.functional as F

from folder_dataset import CELL, MEAN, STD

MOVE_MARGIN = 2 * CELL  # px: a pasted defect nearer a border than this is an edge defect and is never moved


def paste_defects(x, t, y, has_mask, gen, donors, p, rot90=False, move=0.0):
    """Copy-paste: for each good image of the batch, int(p) more (defective) examples, and one more with probability
    p - int(p), are appended, each:
    that good image with the masked pixels of a random defective training image (donors: images, S x S 0/1 pixel
    masks and cell targets) pasted at the same place, after the same random flips (and transpose with rot90) of
    donor image, mask and target. The pasted pixels are shifted so that their level just around the mask matches
    the good image's (what a defect looks like against its surroundings is kept, not the donor's brightness), and
    the mask edge is feathered over 2 px. The new example's target is the donor's. With move > 0, a defect that
    keeps MOVE_MARGIN px from every border is, with probability move, first shifted to a random place (see
    _moved); defects at the border (breaks, frays) stay where they are."""
    dx, dm, dt = donors
    xs, ts = [], []
    for i in range(x.shape[0]):
        if y[i] != 0:
            continue
        whole = int(p)
        for _ in range(whole + (1 if torch.rand(1, generator=gen).item() < p - whole else 0)):
            _paste_one(x, i, gen, dx, dm, dt, rot90, move, xs, ts)
    if not xs:
        return x, t, y, has_mask
    k = len(xs)
    return (torch.cat([x] + xs), torch.cat([t] + ts), torch.cat([y, torch.ones(k)]),
            torch.cat([has_mask, torch.ones(k, dtype=torch.bool)]))


def _moved(d, m, c, gen):
    """Donor image, pixel mask and cell target shifted together by whole cells (so the target stays exact) to a
    random place where the defect keeps MOVE_MARGIN px from every border; unchanged if it is nearer a border now."""
    size = m.shape[-1]
    rows = torch.nonzero(m[0, 0].amax(dim=1) > 0)[:, 0]
    cols = torch.nonzero(m[0, 0].amax(dim=0) > 0)[:, 0]
    if rows.numel() == 0:
        return d, m, c
    shifts = []
    for lo, hi in ((int(rows[0]), int(rows[-1])), (int(cols[0]), int(cols[-1]))):
        if lo < MOVE_MARGIN or hi >= size - MOVE_MARGIN:
            return d, m, c
        k_min, k_max = -((lo - MOVE_MARGIN) // CELL), (size - MOVE_MARGIN - 1 - hi) // CELL
        shifts.append(int(torch.randint(k_min, k_max + 1, (1,), generator=gen)))
    ky, kx = shifts
    # the cell target can reach a cell past the resized mask (thin defects): keep it whole, never wrapped
    cells = c.shape[-1]
    cr = torch.nonzero(c[0, 0].amax(dim=1) > 0)[:, 0]
    cc = torch.nonzero(c[0, 0].amax(dim=0) > 0)[:, 0]
    if cr.numel() and (int(cr[0]) + ky < 0 or int(cr[-1]) + ky >= cells or int(cc[0]) + kx < 0 or int(cc[-1]) + kx >= cells):
        return d, m, c
    return (d.roll((ky * CELL, kx * CELL), dims=(-2, -1)), m.roll((ky * CELL, kx * CELL), dims=(-2, -1)),
            c.roll((ky, kx), dims=(-2, -1)))


def _paste_one(x, i, gen, dx, dm, dt, rot90, move, xs, ts):
    """One pasted example of good image i (see paste_defects), appended to xs / ts."""
    j = int(torch.randint(0, dx.shape[0], (1,), generator=gen))
    d, m, c = dx[j:j + 1], dm[j:j + 1], dt[j:j + 1]
    if rot90 and torch.rand(1, generator=gen).item() < 0.5:
        d, m, c = d.transpose(-1, -2), m.transpose(-1, -2), c.transpose(-1, -2)
    for dim in (-1, -2):
        if torch.rand(1, generator=gen).item() < 0.5:
            d, m, c = d.flip(dim), m.flip(dim), c.flip(dim)
    if move > 0 and torch.rand(1, generator=gen).item() < move:
        d, m, c = _moved(d, m, c, gen)
    ring = F.max_pool2d(m, 9, 1, 4) - m
    soft = F.avg_pool2d(F.max_pool2d(m, 3, 1, 1), 3, 1, 1)
    shift = ((x[i:i + 1] - d) * ring).sum() / ring.sum().clamp(min=1)
    xs.append(x[i:i + 1] * (1 - soft) + (d + shift) * soft)
    ts.append(c)


def fixed_crop(x, t, y, has_mask, gen, crop_size):
    """A random crop_size x crop_size window (cell-aligned, no resize: the scale stays) of each image and its
    target. The label follows the mask: a crop of a defective image with a mask is defective iff the crop holds
    a positive cell; goods stay good; a defect without a mask keeps its label."""
    size, k = x.shape[-1], crop_size // CELL
    xs, ts = [], []
    for i in range(x.shape[0]):
        y0 = int(torch.randint(0, (size - crop_size) // CELL + 1, (1,), generator=gen)) * CELL
        x0 = int(torch.randint(0, (size - crop_size) // CELL + 1, (1,), generator=gen)) * CELL
        xs.append(x[i:i + 1, :, y0:y0 + crop_size, x0:x0 + crop_size])
        ts.append(t[i:i + 1, :, y0 // CELL:y0 // CELL + k, x0 // CELL:x0 // CELL + k])
    xc, tc = torch.cat(xs), torch.cat(ts)
    yc = torch.where(has_mask, (tc.amax(dim=(1, 2, 3)) > 0).float(), y)
    return xc, tc, yc


def zoom(x, t, gen, z):
    """Random anisotropic scale: x and y each by a factor in [1/(1+z), 1+z] (log-uniform), shifted by up to 10 % of
    the side, image bilinear and target (cells) bilinear > 0 (a positive cell is never skipped), both with
    reflection at the borders. Makes the net less sensitive to how much a crop was stretched."""
    n = x.shape[0]
    r = torch.rand(n, 4, generator=gen)
    lim = float(np.log1p(z))
    sx, sy = torch.exp((r[:, 0] * 2 - 1) * lim), torch.exp((r[:, 1] * 2 - 1) * lim)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = 1 / sx, 1 / sy
    theta[:, 0, 2], theta[:, 1, 2] = (r[:, 2] * 2 - 1) * 0.2, (r[:, 3] * 2 - 1) * 0.2
    gx = F.affine_grid(theta, list(x.shape), align_corners=False)
    gt = F.affine_grid(theta, list(t.shape), align_corners=False)
    xz = F.grid_sample(x, gx, mode='bilinear', padding_mode='reflection', align_corners=False)
    tz = (F.grid_sample(t, gt, mode='bilinear', padding_mode='reflection', align_corners=False) > 1e-6).float()
    return xz, tz


def augment(x, t, gen, rot90=False, crop=0.0, contrast=0.0):
    """Random h/v flips (and with rot90 transposes; square inputs), image and target alike; with crop > 0 a
    random crop of (1-crop..1) of each side resized back (image bilinear, target max-pooled), a +/-20 %
    contrast change about the mean; and +/-5 % gain, +/-5 grey levels."""
    x, t = x.clone(), t.clone()
    size, cells = x.shape[-1], t.shape[-1]
    for i in range(x.shape[0]):
        if rot90 and torch.rand(1, generator=gen).item() < 0.5:
            x[i], t[i] = x[i].transpose(-1, -2).clone(), t[i].transpose(-1, -2).clone()
        if torch.rand(1, generator=gen).item() < 0.5:
            x[i], t[i] = x[i].flip(-1).clone(), t[i].flip(-1).clone()
        if torch.rand(1, generator=gen).item() < 0.5:
            x[i], t[i] = x[i].flip(-2).clone(), t[i].flip(-2).clone()
        if crop > 0:
            fh, fw = (1 - crop * torch.rand(2, generator=gen)).tolist()
            ch, cw = max(CELL, int(round(cells * fh)) * CELL), max(CELL, int(round(cells * fw)) * CELL)
            y0 = int(torch.randint(0, (size - ch) // CELL + 1, (1,), generator=gen)) * CELL
            x0 = int(torch.randint(0, (size - cw) // CELL + 1, (1,), generator=gen)) * CELL
            xi = x[i:i + 1, :, y0:y0 + ch, x0:x0 + cw]
            ti = t[i:i + 1, :, y0 // CELL:(y0 + ch) // CELL, x0 // CELL:(x0 + cw) // CELL]
            x[i] = F.interpolate(xi, size=(size, size), mode='bilinear', align_corners=False)[0]
            t[i] = F.adaptive_max_pool2d(ti, (cells, cells))[0]
            c = 1 + (torch.rand(1, generator=gen).item() - 0.5) * 0.4
            m = x[i].mean()
            x[i] = (x[i] - m) * c + m
        if contrast > 0:
            c = 1 + (torch.rand(1, generator=gen).item() * 2 - 1) * contrast
            m = x[i].mean()
            x[i] = (x[i] - m) * c + m
        gain = 1 + (torch.rand(1, generator=gen).item() - 0.5) * 0.1
        offset = (torch.rand(1, generator=gen).item() - 0.5) * 0.16
        x[i] = ((x[i] * STD + MEAN) * gain - MEAN) / STD + offset
    return x, t
