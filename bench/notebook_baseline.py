"""FAITHFUL PORT of the course notebook's baseline (shared/notebook/polyp_segmentation_notebook.md).

This module is a *reference*, not part of polyp_ray: it copies the notebook's input pipeline, its
subclassed U-Net, its losses and its ``model.fit`` call as closely as TF 2.21 / Keras 3 allow, so that
benchmarks can compare polyp_ray against what the notebook actually did.  Known defects of the
notebook are reproduced on purpose (and marked "DEFECT (faithful)"); do not "fix" them here.

Deviations that could not be avoided (each marked "PORT:" in the code):
  * Kvasir-SEG ships JPEG, not BMP: ``tf.image.decode_bmp`` -> ``tf.io.decode_jpeg``.
  * ``tensorflow_addons`` does not import beside Keras 3: ``tfa.image.translate`` is replaced by the
    TF core op it wraps, ``tf.raw_ops.ImageProjectiveTransformV3`` with the same transform
    ``[1, 0, -dx, 0, 1, -dy, 0, 0]``, NEAREST interpolation and CONSTANT (zero) fill.
  * ``tf.keras.experimental.CosineDecay`` -> ``keras.optimizers.schedules.CosineDecay`` (same formula),
    and Keras 3's LearningRateScheduler insists on a Python float, so the schedule value is wrapped
    in ``float(...)``.
  * Keras 3 ``save_weights_only`` checkpoints must end in ``.weights.h5`` (checkpointing is optional).
  * The sigmoid head is pinned to float32 (``dtype="float32"``): a no-op at the notebook's float32, and
    what lets the same class run under ``mixed_bfloat16`` for the speed benchmarks.

Run ``python bench/notebook_baseline.py`` for a self-check (parameter count 61,240,193 at 128 px).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import keras
import tensorflow as tf
from keras import layers, losses

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_PARAMS = 61_240_193  # model.summary() in the notebook, U-Net at 128x128x3
NOTEBOOK_NON_TRAINABLE = 17_664


def default_kvasir_dir() -> Path:
    """$POLYP_RAY_KVASIR, else ../shared/data/Kvasir-SEG relative to the repo root."""
    env = os.environ.get("POLYP_RAY_KVASIR")
    return Path(env) if env else (REPO_ROOT / ".." / "shared" / "data" / "Kvasir-SEG").resolve()


def list_kvasir_pairs(data_dir: str | os.PathLike | None = None, limit: int | None = None):
    """Sorted image and mask paths (the notebook: os.listdir + sort on both folders)."""
    root = Path(data_dir) if data_dir is not None else default_kvasir_dir()
    x = sorted(str(p) for p in (root / "images").iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    y = sorted(str(p) for p in (root / "masks").iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if [Path(p).name for p in x] != [Path(p).name for p in y]:
        raise ValueError(f"{root}: images/ and masks/ do not hold the same file names")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x, y


# ----------------------------------------------------------------------------------------------
# Step 2: input pipeline (faithful)
# ----------------------------------------------------------------------------------------------


def _make_process_pathnames(image_size: int):
    def _process_pathnames(fname, label_path):
        img_str = tf.io.read_file(fname)
        # PORT: the notebook's data was BMP (tf.image.decode_bmp); Kvasir-SEG is JPEG.
        img = tf.io.decode_jpeg(img_str, channels=3)

        label_img_str = tf.io.read_file(label_path)
        label_img = tf.io.decode_jpeg(label_img_str, channels=3)  # PORT: was decode_bmp
        label_img = tf.image.rgb_to_grayscale(label_img)

        resize = [image_size, image_size]
        img = tf.image.resize(img, resize)
        label_img = tf.image.resize(label_img, resize)

        scale = 1 / 255.0
        img = tf.cast(img, dtype=tf.float32) * scale
        # DEFECT (faithful): the mask is never binarised; with Kvasir's JPEG-noisy masks and the
        # bilinear resize the "labels" are soft values in [0, 1].
        label_img = tf.cast(label_img, dtype=tf.float32) * scale

        return img, label_img

    return _process_pathnames


def tfa_translate(images, translations):
    """PORT of ``tfa.image.translate(images, translations)`` (tfa defaults) on TF core ops.

    tfa builds the projective transform ``[1, 0, -dx, 0, 1, -dy, 0, 0]`` and calls
    ``ImageProjectiveTransformV3`` with interpolation="nearest", fill_mode="constant", fill_value=0,
    lifting a 3-D image to a batch of one.
    """
    images = tf.convert_to_tensor(images)
    rank3 = images.shape.rank == 3
    image_4d = images[tf.newaxis] if rank3 else images
    translations = tf.cast(tf.convert_to_tensor(translations), tf.float32)
    dx, dy = translations[0], translations[1]
    one, zero = tf.constant(1.0), tf.constant(0.0)
    transforms = tf.reshape(tf.stack([one, zero, -dx, zero, one, -dy, zero, zero]), [1, 8])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image_4d,
        transforms=transforms,
        output_shape=tf.shape(image_4d)[1:3],
        fill_value=tf.constant(0.0, tf.float32),
        interpolation="NEAREST",
        fill_mode="CONSTANT",
    )
    return out[0] if rank3 else out


def shift_img(output_img, label_img, width_shift_range, height_shift_range, img_shape):
    """This fn will perform the horizontal or vertical shift (notebook: reads the global img_shape)."""
    if width_shift_range or height_shift_range:
        if width_shift_range:
            width_shift_range = tf.random.uniform(
                [], -width_shift_range * img_shape[1], width_shift_range * img_shape[1]
            )
        if height_shift_range:
            height_shift_range = tf.random.uniform(
                [], -height_shift_range * img_shape[0], height_shift_range * img_shape[0]
            )
        # PORT: tfa.image.translate -> tfa_translate (the TF core op tfa wraps)
        output_img = tfa_translate(output_img, [width_shift_range, height_shift_range])
        label_img = tfa_translate(label_img, [width_shift_range, height_shift_range])
    return output_img, label_img


def flip_img(horizontal_flip, tr_img, label_img):
    if horizontal_flip:
        flip_prob = tf.random.uniform([], 0.0, 1.0)
        tr_img, label_img = tf.cond(
            tf.less(flip_prob, 0.5),
            lambda: (tf.image.flip_left_right(tr_img), tf.image.flip_left_right(label_img)),
            lambda: (tr_img, label_img),
        )
    return tr_img, label_img


def _augment(
    img,
    label_img,
    resize=None,  # Resize the image to some size e.g. [256, 256]
    scale=1,  # Scale image e.g. 1 / 255.
    hue_delta=0.0,  # Adjust the hue of an RGB image by random factor
    horizontal_flip=True,  # Random left right flip,
    width_shift_range=0.05,  # Randomly translate the image horizontally
    height_shift_range=0.05,  # Randomly translate the image vertically
    img_shape=(128, 128, 3),  # the notebook read this from a global
):
    if resize is not None:
        label_img = tf.image.resize(label_img, resize)
        img = tf.image.resize(img, resize)

    if hue_delta:
        img = tf.image.random_hue(img, hue_delta)

    img, label_img = flip_img(horizontal_flip, img, label_img)
    img, label_img = shift_img(img, label_img, width_shift_range, height_shift_range, img_shape)
    label_img = tf.cast(label_img, dtype=tf.float32) * scale
    img = tf.cast(img, dtype=tf.float32) * scale
    return img, label_img


def notebook_pipeline(
    image_paths,
    mask_paths,
    image_size: int = 128,
    batch_size: int = 4,
    is_train: bool = True,
    threads: int = 4,
    hue_delta: float = 0.0,
):
    """The notebook's ``get_baseline_dataset``: decode + resize every file on every epoch, no cache,
    augment (train only), ``shuffle(num_x * 10)``, ``batch``; no prefetch, no repeat (the notebook
    calls ``.repeat()`` on the training set afterwards; ``notebook_fit`` does too)."""
    preproc_fn = functools.partial(_augment, hue_delta=hue_delta, img_shape=(image_size, image_size, 3))
    filenames, labels = list(map(str, image_paths)), list(map(str, mask_paths))
    num_x = len(filenames)
    dataset = tf.data.Dataset.from_tensor_slices((filenames, labels))
    dataset = dataset.map(_make_process_pathnames(image_size), num_parallel_calls=threads)
    if is_train:
        dataset = dataset.map(preproc_fn, num_parallel_calls=threads)
        dataset = dataset.shuffle(num_x * 10)
    dataset = dataset.batch(batch_size)
    return dataset


# ----------------------------------------------------------------------------------------------
# Step 4: U-Net (faithful subclassed port; base width 64)
# DEFECT (faithful): every call() defaults training=True and UNet.call never passes `training` on.
# In Keras 3 an outer call's explicit `training` still propagates to the blocks, but a bare
# `model(x)` (no training argument, as in the notebook's build call) runs BatchNorm in training mode
# and updates its moving statistics.
# ----------------------------------------------------------------------------------------------


class Conv(keras.Model):
    def __init__(self, num_filters, kernel_size):
        super().__init__()
        self.conv = layers.Conv2D(num_filters, kernel_size, padding="same")
        self.bn = layers.BatchNormalization()

    def call(self, inputs, training=True):
        x = self.conv(inputs)
        x = self.bn(x, training=training)
        x = layers.ReLU()(x)  # faithful: a fresh stateless ReLU layer per call
        return x


class ConvBlock(keras.Model):
    def __init__(self, num_filters):
        super().__init__()
        self.conv1 = Conv(num_filters, 3)
        self.conv2 = Conv(num_filters * 2, 3)

    def call(self, inputs, training=True):
        encoder = self.conv1(inputs, training=training)
        encoder = self.conv2(encoder, training=training)
        return encoder


class ConvBlock_R(keras.Model):  # noqa: N801 (notebook name)
    def __init__(self, num_filters):
        super().__init__()
        self.conv1 = Conv(num_filters, 3)
        self.conv2 = Conv(num_filters, 3)

    def call(self, inputs, training=True):
        decoder = self.conv1(inputs, training=training)
        decoder = self.conv2(decoder, training=training)
        return decoder


class EncoderBlock(keras.Model):
    def __init__(self, num_filters):
        super().__init__()
        self.conv_block = ConvBlock(num_filters)
        self.encoder_pool = layers.MaxPool2D()

    def call(self, inputs, training=True):
        encoder = self.conv_block(inputs, training=training)
        encoder_pool = self.encoder_pool(encoder)
        return encoder_pool, encoder


class DecoderBlock(keras.Model):
    def __init__(self, num_filters):
        super().__init__()
        self.convT = layers.Conv2DTranspose(num_filters, 3, strides=2, padding="same")
        self.bn = layers.BatchNormalization()
        self.conv_block_r = ConvBlock_R(num_filters)

    def call(self, input_tensor, concat_tensor, training=True):
        decoder = self.convT(input_tensor)
        decoder = self.bn(decoder, training=training)
        decoder = layers.ReLU()(decoder)
        decoder = tf.concat([decoder, concat_tensor], axis=-1)
        decoder = self.conv_block_r(decoder, training=training)
        return decoder


class UNet(keras.Model):
    def __init__(self):
        super().__init__()
        self.encoder_block1 = EncoderBlock(64)
        self.encoder_block2 = EncoderBlock(128)
        self.encoder_block3 = EncoderBlock(256)
        self.encoder_block4 = EncoderBlock(512)

        self.center = ConvBlock(1024)

        self.decoder_block4 = DecoderBlock(512)
        self.decoder_block3 = DecoderBlock(256)
        self.decoder_block2 = DecoderBlock(128)
        self.decoder_block1 = DecoderBlock(64)

        # PORT: dtype pinned to float32 (no-op at float32; keeps the sigmoid in float32 under
        # mixed_bfloat16).
        self.output_conv = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32")

    def call(self, inputs, training=True):
        # DEFECT (faithful): `training` is not passed to the blocks.
        encoder1_pool, encoder1 = self.encoder_block1(inputs)
        encoder2_pool, encoder2 = self.encoder_block2(encoder1_pool)
        encoder3_pool, encoder3 = self.encoder_block3(encoder2_pool)
        encoder4_pool, encoder4 = self.encoder_block4(encoder3_pool)

        center = self.center(encoder4_pool)

        decoder4 = self.decoder_block4(center, encoder4)
        decoder3 = self.decoder_block3(decoder4, encoder3)
        decoder2 = self.decoder_block2(decoder3, encoder2)
        decoder1 = self.decoder_block1(decoder2, encoder1)

        outputs = self.output_conv(decoder1)
        return outputs


NotebookUNet = UNet


def build_notebook_unet(image_size: int = 128, batch_size: int = 4) -> UNet:
    """``unet_model = UNet()`` then the notebook's build call
    ``model(tf.random.normal([batch_size, image_size, image_size, 3]))``.

    DEFECT (faithful): that bare call runs in training mode, so BatchNorm moving statistics take one
    update from random noise before training starts.  The model is returned uncompiled; use
    ``compile_notebook_unet`` (or ``notebook_fit``, which compiles).
    """
    model = UNet()
    model(tf.random.normal([batch_size, image_size, image_size, 3]))
    return model


# ----------------------------------------------------------------------------------------------
# Step 5: losses / metric (exactly as written)
# ----------------------------------------------------------------------------------------------


def dice_coeff(y_true, y_pred):
    smooth = 1e-10
    # Flatten
    y_true_f = tf.reshape(y_true, [-1])
    y_pred_f = tf.reshape(y_pred, [-1])
    intersection = tf.reduce_sum(y_true_f * y_pred_f)
    score = (2.0 * intersection + smooth) / (
        tf.reduce_sum(tf.square(y_true_f)) + tf.reduce_sum(tf.square(y_pred_f)) + smooth
    )
    return score


def dice_loss(y_true, y_pred):
    loss = 1 - dice_coeff(y_true, y_pred)
    return loss


def bce_dice_loss(y_true, y_pred):
    loss = tf.reduce_mean(losses.binary_crossentropy(y_true, y_pred)) + dice_loss(y_true, y_pred)
    return loss


def compile_notebook_unet(model, steps_per_execution: int = 1, jit_compile="auto"):
    """``model.compile(optimizer=Adam(), loss=bce_dice_loss, metrics=[dice_loss])`` (Adam at its
    default learning rate 1e-3; the LR callback sets it per epoch).  The two keyword arguments are
    benchmark knobs; their defaults are the notebook's behaviour."""
    optimizer = keras.optimizers.Adam()
    model.compile(
        optimizer=optimizer,
        loss=bce_dice_loss,
        metrics=[dice_loss],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model


def notebook_lr_callback(max_epochs: int, verbose: int = 1):
    """``LearningRateScheduler(CosineDecay(1e-3, max_epochs))``: cosine decay *per epoch*."""
    cos_decay = keras.optimizers.schedules.CosineDecay(1e-3, max_epochs)
    # PORT: Keras 3's LearningRateScheduler requires a Python float from the schedule.
    return keras.callbacks.LearningRateScheduler(lambda epoch: float(cos_decay(epoch)), verbose=verbose)


def notebook_fit(
    model,
    train_ds,
    val_ds,
    num_train_examples: int,
    num_test_examples: int,
    max_epochs: int = 10,
    batch_size: int = 4,
    checkpoint_path: str | None = None,
    extra_callbacks=(),
    verbose="auto",
    compile_model: bool = True,
):
    """The notebook's training cell at float32, batch 4::

        model.fit(train_dataset.repeat(), epochs=max_epochs,
                  steps_per_epoch=num_train_examples // batch_size,
                  validation_data=test_dataset,
                  validation_steps=num_test_examples // batch_size,
                  callbacks=[cp_callback, lr_callback])

    ``train_ds``/``val_ds`` come from ``notebook_pipeline`` (un-repeated).  ``checkpoint_path`` (must
    end in ``.weights.h5``) enables the notebook's best-val_loss weights checkpoint.
    Returns the History.
    """
    if compile_model:
        compile_notebook_unet(model)
    callbacks = []
    if checkpoint_path:
        os.makedirs(os.path.dirname(os.path.abspath(checkpoint_path)), exist_ok=True)
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                checkpoint_path,
                save_weights_only=True,
                monitor="val_loss",
                mode="auto",
                save_best_only=True,
                verbose=0,
            )
        )
    callbacks.append(notebook_lr_callback(max_epochs))
    callbacks.extend(extra_callbacks)
    return model.fit(
        train_ds.repeat(),
        epochs=max_epochs,
        steps_per_epoch=num_train_examples // batch_size,
        validation_data=val_ds,
        validation_steps=num_test_examples // batch_size,
        callbacks=callbacks,
        verbose=verbose,
    )


# ----------------------------------------------------------------------------------------------
# Forward FLOPs (analytic): conv layers only, 2 * MACs
# ----------------------------------------------------------------------------------------------


def unet_forward_flops(image_size: int = 128, base: int = 64) -> int:
    """Forward FLOPs per image of the notebook U-Net (convolutions and transposed convolutions;
    BN/ReLU/pool are < 1% and left out).  Training costs about 3x this (forward + 2x backward)."""
    flops = 0
    hw = image_size
    cin = 3
    skips = []
    for f in (base, base * 2, base * 4, base * 8):  # EncoderBlock(f): conv f, conv 2f, pool
        flops += 2 * hw * hw * 9 * (cin * f + f * 2 * f)
        cin = 2 * f
        skips.append((hw, cin))
        hw //= 2
    f = base * 16  # center ConvBlock(1024)
    flops += 2 * hw * hw * 9 * (cin * f + f * 2 * f)
    cin = 2 * f
    for f in (base * 8, base * 4, base * 2, base):  # DecoderBlock(f)
        flops += 2 * hw * hw * 9 * cin * f  # Conv2DTranspose 3x3 stride 2 (per input pixel)
        hw *= 2
        skip_hw, skip_c = skips.pop()
        assert skip_hw == hw
        flops += 2 * hw * hw * 9 * ((f + skip_c) * f + f * f)
        cin = f
    flops += 2 * hw * hw * cin * 1  # 1x1 sigmoid head
    return flops


def _self_check() -> None:
    model = build_notebook_unet(128)
    n = model.count_params()
    non_trainable = sum(int(tf.size(w)) for w in model.non_trainable_weights)
    print(f"NotebookUNet at 128x128: {n:,} parameters ({non_trainable:,} non-trainable)")
    assert n == NOTEBOOK_PARAMS, n
    assert non_trainable == NOTEBOOK_NON_TRAINABLE, non_trainable
    out = model(tf.zeros([2, 128, 128, 3]), training=False)
    assert out.shape == (2, 128, 128, 1), out.shape
    y = tf.cast(tf.random.uniform([2, 128, 128, 1]) > 0.5, tf.float32)
    assert abs(float(dice_loss(y, y))) < 1e-6
    img = tf.reshape(tf.range(1, 17, dtype=tf.float32), [4, 4, 1])  # row 0 = 1 2 3 4
    shifted = tfa_translate(img, [1.0, 0.0])  # tfa: content moves right by dx, zeros enter on the left
    assert shifted[0, :, 0].numpy().tolist() == [0.0, 1.0, 2.0, 3.0], shifted[0, :, 0]
    shifted = tfa_translate(img, [0.0, -1.0])  # dy < 0: content moves up, zeros enter at the bottom
    assert shifted[:, 0, 0].numpy().tolist() == [5.0, 9.0, 13.0, 0.0], shifted[:, 0, 0]
    print(
        f"forward FLOPs per 128 px image: {unet_forward_flops(128) / 1e9:.1f} GFLOP "
        f"(training ~{3 * unet_forward_flops(128) / 1e9:.0f} GFLOP)"
    )
    print("self-check OK")


if __name__ == "__main__":
    _self_check()
