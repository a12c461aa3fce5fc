"""State dict layouts (key -> shape) of the authors' own implementations, written from their module trees.

These are independent of archsearch's key-mapping rules: they list the names and shapes an
official checkpoint holds, each name read from the attribute the authors' module assigns
(the file is named beside each list). Sources: open-mmlab/mmsegmentation (``mmseg/models/...``),
its fork in gyyang23/RDRNet (``mmsegmentation/mmseg/models/...``) and RolandGao/RegSeg. mmcv's
``ConvModule`` names its parts ``conv`` and ``bn`` (``build_norm_layer`` abbreviates BatchNorm
and SyncBN to ``bn``); ``BaseDecodeHead`` (``decode_heads/decode_head.py``) owns the classifier
``conv_seg`` (``cls_seg`` is its method that applies dropout and ``conv_seg``, never a key).
"""

from __future__ import annotations

Layout = dict[str, tuple[int, ...]]


def _bn(layout: Layout, prefix: str, channels: int) -> None:
    layout[f"{prefix}.weight"] = (channels,)
    layout[f"{prefix}.bias"] = (channels,)
    layout[f"{prefix}.running_mean"] = (channels,)
    layout[f"{prefix}.running_var"] = (channels,)
    layout[f"{prefix}.num_batches_tracked"] = ()


def _conv_module(layout: Layout, prefix: str, cin: int, cout: int, k: int, *, bias: bool = False,
                 groups: int = 1, norm_first: bool = False) -> None:
    """mmcv ConvModule: ``conv`` then ``bn`` (pre-activation order: the BN is over the input)."""
    layout[f"{prefix}.conv.weight"] = (cout, cin // groups, k, k)
    if bias:
        layout[f"{prefix}.conv.bias"] = (cout,)
    _bn(layout, f"{prefix}.bn", cin if norm_first else cout)


def _rb(layout: Layout, prefix: str, cin: int, cout: int, stride: int) -> None:
    """RDRNet's ``RB`` (RDRNet ``backbones/rdrnet.py``): path_3x3, path_1x1 (``Block1x1``: conv1, conv2 with
    bias), path_residual (a bare BN when the width and size stay)."""
    _conv_module(layout, f"{prefix}.path_3x3", cin, cout, 3)
    _conv_module(layout, f"{prefix}.path_1x1.conv1", cin, cout, 1, bias=True)
    _conv_module(layout, f"{prefix}.path_1x1.conv2", cout, cout, 1, bias=True)
    if cin == cout and stride == 1:
        _bn(layout, f"{prefix}.path_residual", cin)


def _bottleneck(layout: Layout, prefix: str, cin: int, planes: int, stride: int) -> None:
    """``utils/basic_block.py`` Bottleneck (conv1..3, expansion 2) with the ``downsample`` that DDRNet's and
    RDRNet's ``_make_layer`` build: ``nn.Sequential(nn.Conv2d, BN)``."""
    _conv_module(layout, f"{prefix}.conv1", cin, planes, 1)
    _conv_module(layout, f"{prefix}.conv2", planes, planes, 3)
    _conv_module(layout, f"{prefix}.conv3", planes, planes * 2, 1)
    if stride != 1 or cin != planes * 2:
        layout[f"{prefix}.downsample.0.weight"] = (planes * 2, cin, 1, 1)
        _bn(layout, f"{prefix}.downsample.1", planes * 2)


def _basic(layout: Layout, prefix: str, cin: int, cout: int, stride: int) -> None:
    """``utils/basic_block.py`` BasicBlock (conv1, conv2) with DDRNet's ``nn.Sequential`` downsample."""
    _conv_module(layout, f"{prefix}.conv1", cin, cout, 3)
    _conv_module(layout, f"{prefix}.conv2", cout, cout, 3)
    if stride != 1 or cin != cout:
        layout[f"{prefix}.downsample.0.weight"] = (cout, cin, 1, 1)
        _bn(layout, f"{prefix}.downsample.1", cout)


def _fusion(layout: Layout, c: int) -> None:
    """compression_1/2, down_1, down_2.0/1: the same in ``backbones/ddrnet.py`` and RDRNet's ``rdrnet.py``."""
    _conv_module(layout, "backbone.compression_1", 4 * c, 2 * c, 1)
    _conv_module(layout, "backbone.down_1", 2 * c, 4 * c, 3)
    _conv_module(layout, "backbone.compression_2", 8 * c, 2 * c, 1)
    _conv_module(layout, "backbone.down_2.0", 2 * c, 4 * c, 3)
    _conv_module(layout, "backbone.down_2.1", 4 * c, 8 * c, 3)


def _pyramid_scales(layout: Layout, cin: int, branch: int, out: int) -> None:
    """``utils/ppm.py`` DAPPM (and PAPPM, RPPM, its subclasses): scales.0 is a ConvModule, scales.1..4 are
    ``Sequential(pool, ConvModule)``; every ConvModule is pre-activated (order norm, act, conv)."""
    _conv_module(layout, "backbone.spp.scales.0", cin, branch, 1, norm_first=True)
    for index in range(1, 5):
        _conv_module(layout, f"backbone.spp.scales.{index}.1", cin, branch, 1, norm_first=True)
    _conv_module(layout, "backbone.spp.compression", branch * 5, out, 1, norm_first=True)
    _conv_module(layout, "backbone.spp.shortcut", cin, out, 1, norm_first=True)


def _ddr_head(layout: Layout, cin: int, channels: int, classes: int) -> None:
    """``decode_heads/ddr_head.py`` DDRHead (RDRNet uses it too): head/aux_head = [ConvModule (norm first), BN,
    ReLU]; ``conv_seg`` from BaseDecodeHead, ``aux_cls_seg`` its own."""
    for prefix, width, classifier in (("decode_head.head", cin, "decode_head.conv_seg"),
                                      ("decode_head.aux_head", cin // 2, "decode_head.aux_cls_seg")):
        _conv_module(layout, f"{prefix}.0", width, channels, 3, norm_first=True)
        _bn(layout, f"{prefix}.1", channels)
        layout[f"{classifier}.weight"] = (classes, channels, 1, 1)
        layout[f"{classifier}.bias"] = (classes,)


def rdrnet_layout(c: int, blocks: list, head: int, classes: int = 19) -> Layout:
    """RDRNet (gyyang23/RDRNet ``backbones/rdrnet.py``, RPPM in its ``utils/ppm.py``) + DDRHead."""
    layout: Layout = {}
    stem = [(3, c, 2), (c, c, 2)] + [(c, c, 1)] * blocks[0] + [(c, 2 * c, 2)] + [(2 * c, 2 * c, 1)] * blocks[1]
    for index, (cin, cout, stride) in enumerate(stem):
        _rb(layout, f"backbone.stem.{index}", cin, cout, stride)
    for stage, width in ((0, 4 * c), (1, 8 * c)):
        semantic, detail = blocks[2 + stage]
        cin = 2 * c if stage == 0 else 4 * c
        for index in range(semantic + 1):
            _rb(layout, f"backbone.semantic_branch_layers.{stage}.{index}", cin if index == 0 else width, width,
                2 if index == 0 else 1)
        for index in range(detail):
            _rb(layout, f"backbone.detail_branch_layers.{stage}.{index}", 2 * c, 2 * c, 1)
    semantic, detail = blocks[4]
    for index in range(semantic):
        _bottleneck(layout, f"backbone.semantic_branch_layers.2.0.{index}", 8 * c if index == 0 else 16 * c, 8 * c,
                    2 if index == 0 else 1)
    for index in range(detail):
        _bottleneck(layout, f"backbone.detail_branch_layers.2.{index}", 2 * c if index == 0 else 4 * c, 2 * c, 1)
    _fusion(layout, c)
    _pyramid_scales(layout, 16 * c, 128, 4 * c)
    _bn(layout, "backbone.spp.processes.norm", 128 * 4)
    for parallel in ("parallel1", "parallel2"):
        _conv_module(layout, f"backbone.spp.processes.{parallel}", 512, 512, 3, groups=4)
    _ddr_head(layout, 4 * c, head, classes)
    return layout


def ddrnet_layout(c: int, head: int, classes: int = 19) -> Layout:
    """DDRNet (``backbones/ddrnet.py``: stem, context_branch_layers, spatial_branch_layers, DAPPM) + DDRHead."""
    layout: Layout = {}
    _conv_module(layout, "backbone.stem.0", 3, c, 3)
    _conv_module(layout, "backbone.stem.1", c, c, 3)
    _basic(layout, "backbone.stem.2.0", c, c, 1)
    _basic(layout, "backbone.stem.2.1", c, c, 1)
    _basic(layout, "backbone.stem.4.0", c, 2 * c, 2)
    _basic(layout, "backbone.stem.4.1", 2 * c, 2 * c, 1)
    for stage, (cin, width) in enumerate(((2 * c, 4 * c), (4 * c, 8 * c))):
        _basic(layout, f"backbone.context_branch_layers.{stage}.0", cin, width, 2)
        _basic(layout, f"backbone.context_branch_layers.{stage}.1", width, width, 1)
        _basic(layout, f"backbone.spatial_branch_layers.{stage}.0", 2 * c, 2 * c, 1)
        _basic(layout, f"backbone.spatial_branch_layers.{stage}.1", 2 * c, 2 * c, 1)
    _bottleneck(layout, "backbone.context_branch_layers.2.0", 8 * c, 8 * c, 2)
    _bottleneck(layout, "backbone.spatial_branch_layers.2.0", 2 * c, 2 * c, 1)
    _fusion(layout, c)
    _pyramid_scales(layout, 16 * c, 128, 4 * c)
    for index in range(4):
        _conv_module(layout, f"backbone.spp.processes.{index}", 128, 128, 3, norm_first=True)
    _ddr_head(layout, 4 * c, head, classes)
    return layout


def _dblock(layout: Layout, prefix: str, cin: int, cout: int, dilations: list[int], group_width: int,
            stride: int, se: int) -> None:
    """RegSeg's DBlock (RolandGao/RegSeg ``blocks.py``): conv1..3/bn1..3, ``DilatedConv.convs`` when split,
    ``SEModule`` conv1/conv2 with bias, ``Shortcut`` conv/bn."""
    layout[f"{prefix}.conv1.weight"] = (cout, cin, 1, 1)
    _bn(layout, f"{prefix}.bn1", cout)
    if len(dilations) == 1:
        layout[f"{prefix}.conv2.weight"] = (cout, group_width, 3, 3)
    else:
        split = cout // len(dilations)
        for index in range(len(dilations)):
            layout[f"{prefix}.conv2.convs.{index}.weight"] = (split, group_width, 3, 3)
    _bn(layout, f"{prefix}.bn2", cout)
    layout[f"{prefix}.conv3.weight"] = (cout, cout, 1, 1)
    _bn(layout, f"{prefix}.bn3", cout)
    layout[f"{prefix}.se.conv1.weight"] = (se, cout, 1, 1)
    layout[f"{prefix}.se.conv1.bias"] = (se,)
    layout[f"{prefix}.se.conv2.weight"] = (cout, se, 1, 1)
    layout[f"{prefix}.se.conv2.bias"] = (cout,)
    if stride != 1 or cin != cout:
        layout[f"{prefix}.shortcut.conv.weight"] = (cout, cin, 1, 1)
        _bn(layout, f"{prefix}.shortcut.bn", cout)


def _conv_bn_act(layout: Layout, prefix: str, cin: int, cout: int, k: int) -> None:
    layout[f"{prefix}.conv.weight"] = (cout, cin, k, k)
    _bn(layout, f"{prefix}.bn", cout)


def regseg_layout(dilations: list[list[int]], *, large: bool = False, classes: int = 19) -> Layout:
    """RegSeg('exp48_decoder26') or, with ``large``, RegSeg('exp53_decoder29') (``model.py``: stem, body,
    decoder; ``blocks.py``: RegSegBody/RegSegBody2 stage4/8/16, Exp2_Decoder26/29 head16/8/4, conv8/4, classifier)."""
    layout: Layout = {}
    _conv_bn_act(layout, "stem", 3, 32, 3)
    if large:
        gw, w4, w8, w16, last = 24, 48, 120, 336, 384
        _dblock(layout, "body.stage4.0", 32, w4, [1], gw, 2, 8)
        _dblock(layout, "body.stage4.1", w4, w4, [1], gw, 1, w4 // 4)
        eight = [(48, 2)] + [(w8, 1)] * 5
    else:
        gw, w4, w8, w16, last = 16, 48, 128, 256, 320
        _dblock(layout, "body.stage4", 32, w4, [1], gw, 2, 8)
        eight = [(48, 2)] + [(w8, 1)] * 2
    for index, (cin, stride) in enumerate(eight):
        _dblock(layout, f"body.stage8.{index}", cin, w8, [1], gw, stride, cin // 4)
    _dblock(layout, "body.stage16.0", w8, w16, [1], gw, 2, w8 // 4)
    for index, dilation in enumerate(dilations, start=1):
        cout = last if index == len(dilations) else w16
        _dblock(layout, f"body.stage16.{index}", w16, cout, dilation, gw, 1, w16 // 4)
    scale = 2 if large else 1
    _conv_bn_act(layout, "decoder.head16", last, 128 * scale, 1)
    _conv_bn_act(layout, "decoder.head8", w8, 128 * scale, 1)
    _conv_bn_act(layout, "decoder.head4", w4, 8 * scale, 1)
    _conv_bn_act(layout, "decoder.conv8", 128 * scale, 64 * scale, 3)
    _conv_bn_act(layout, "decoder.conv4", 64 * scale + 8 * scale, 64 * scale, 3)
    layout["decoder.classifier.weight"] = (classes, 64 * scale, 1, 1)
    layout["decoder.classifier.bias"] = (classes,)
    return layout


def mmseg_resnet18_layout(prefix: str) -> Layout:
    """mmsegmentation's ``ResNet(depth=18)`` (``backbones/resnet.py``: plain stem conv1 7x7, bn1; layer1..4 of
    BasicBlocks with conv1/bn1, conv2/bn2; ``ResLayer``'s downsample is ``Sequential(conv, norm)``)."""
    layout: Layout = {f"{prefix}.conv1.weight": (64, 3, 7, 7)}
    _bn(layout, f"{prefix}.bn1", 64)
    cin = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for index in range(2):
            block = f"{prefix}.layer{stage}.{index}"
            first_in = cin if index == 0 else width
            layout[f"{block}.conv1.weight"] = (width, first_in, 3, 3)
            _bn(layout, f"{block}.bn1", width)
            layout[f"{block}.conv2.weight"] = (width, width, 3, 3)
            _bn(layout, f"{block}.bn2", width)
            if index == 0 and first_in != width:
                layout[f"{block}.downsample.0.weight"] = (width, first_in, 1, 1)
                _bn(layout, f"{block}.downsample.1", width)
        cin = width
    return layout


def _mm_basic(layout: Layout, prefix: str, cin: int, cout: int, stride: int) -> None:
    """``utils/basic_block.py`` BasicBlock as PIDNet builds it (``backbones/pidnet.py`` ``_make_layer``): the
    downsample is a ConvModule."""
    _conv_module(layout, f"{prefix}.conv1", cin, cout, 3)
    _conv_module(layout, f"{prefix}.conv2", cout, cout, 3)
    if stride != 1 or cin != cout:
        _conv_module(layout, f"{prefix}.downsample", cin, cout, 1)


def _mm_bottleneck(layout: Layout, prefix: str, cin: int, planes: int, stride: int) -> None:
    """``utils/basic_block.py`` Bottleneck with PIDNet's ConvModule downsample."""
    _conv_module(layout, f"{prefix}.conv1", cin, planes, 1)
    _conv_module(layout, f"{prefix}.conv2", planes, planes, 3)
    _conv_module(layout, f"{prefix}.conv3", planes, 2 * planes, 1)
    if stride != 1 or cin != 2 * planes:
        _conv_module(layout, f"{prefix}.downsample", cin, 2 * planes, 1)


def _mm_layer(layout: Layout, prefix: str, block, cin: int, planes: int, count: int, stride: int = 1) -> None:
    expansion = 2 if block is _mm_bottleneck else 1
    for index in range(count):
        block(layout, f"{prefix}.{index}", cin if index == 0 else planes * expansion, planes,
              stride if index == 0 else 1)


def pidnet_layout(c: int, ppm: int, stem_blocks: int, branch_blocks: int, head: int, classes: int = 19) -> Layout:
    """PIDNet: ``backbones/pidnet.py`` (stem, i/p/d_branch_layers, compression_1/2, pag_1/2 = PagFM f_i/f_p,
    diff_1/2, spp = PAPPM or DAPPM from ``utils/ppm.py``, dfm = LightBag f_p/f_i or Bag conv) + PIDHead
    (``decode_heads/pid_head.py``): i/p/d_head = BasePIDHead (conv: ConvModule norm first, norm: BN),
    ``p_cls_seg`` and ``d_cls_seg`` its own, the I head's classifier BaseDecodeHead's ``conv_seg``."""
    large = stem_blocks == 3
    layout: Layout = {}
    _conv_module(layout, "backbone.stem.0", 3, c, 3)
    _conv_module(layout, "backbone.stem.1", c, c, 3)
    _mm_layer(layout, "backbone.stem.2", _mm_basic, c, c, stem_blocks)
    _mm_layer(layout, "backbone.stem.4", _mm_basic, c, 2 * c, stem_blocks, stride=2)
    _mm_layer(layout, "backbone.i_branch_layers.0", _mm_basic, 2 * c, 4 * c, branch_blocks, stride=2)
    _mm_layer(layout, "backbone.i_branch_layers.1", _mm_basic, 4 * c, 8 * c, branch_blocks, stride=2)
    _mm_layer(layout, "backbone.i_branch_layers.2", _mm_bottleneck, 8 * c, 8 * c, 2, stride=2)
    for index in range(2):
        _mm_layer(layout, f"backbone.p_branch_layers.{index}", _mm_basic, 2 * c, 2 * c, stem_blocks)
    _mm_layer(layout, "backbone.p_branch_layers.2", _mm_bottleneck, 2 * c, 2 * c, 1)
    for index in (1, 2):
        _conv_module(layout, f"backbone.compression_{index}", 2 ** (index + 1) * c, 2 * c, 1)
        _conv_module(layout, f"backbone.pag_{index}.f_i", 2 * c, c, 1)
        _conv_module(layout, f"backbone.pag_{index}.f_p", 2 * c, c, 1)
    if large:
        _mm_basic(layout, "backbone.d_branch_layers.0", 2 * c, 2 * c, 1)
        _mm_basic(layout, "backbone.d_branch_layers.1", 2 * c, 2 * c, 1)
    else:
        _mm_basic(layout, "backbone.d_branch_layers.0", 2 * c, c, 1)
        _mm_layer(layout, "backbone.d_branch_layers.1", _mm_bottleneck, c, c, 1)
    _mm_layer(layout, "backbone.d_branch_layers.2", _mm_bottleneck, 2 * c, 2 * c, 1)
    _conv_module(layout, "backbone.diff_1", 4 * c, 2 * c if large else c, 3)
    _conv_module(layout, "backbone.diff_2", 8 * c, 2 * c, 3)
    _conv_module(layout, "backbone.spp.scales.0", 16 * c, ppm, 1, norm_first=True)
    for index in range(1, 5):
        _conv_module(layout, f"backbone.spp.scales.{index}.1", 16 * c, ppm, 1, norm_first=True)
    if large:
        for index in range(4):
            _conv_module(layout, f"backbone.spp.processes.{index}", ppm, ppm, 3, norm_first=True)
        _conv_module(layout, "backbone.dfm.conv", 4 * c, 4 * c, 3, norm_first=True)
    else:
        _conv_module(layout, "backbone.spp.processes", 4 * ppm, 4 * ppm, 3, groups=4, norm_first=True)
        _conv_module(layout, "backbone.dfm.f_p", 4 * c, 4 * c, 1)
        _conv_module(layout, "backbone.dfm.f_i", 4 * c, 4 * c, 1)
    _conv_module(layout, "backbone.spp.compression", 5 * ppm, 4 * c, 1, norm_first=True)
    _conv_module(layout, "backbone.spp.shortcut", 16 * c, 4 * c, 1, norm_first=True)
    for name, width, channels, outputs, classifier in (("i_head", 4 * c, head, classes, "conv_seg"),
                                                       ("p_head", 2 * c, head, classes, "p_cls_seg"),
                                                       ("d_head", 2 * c, c, 1, "d_cls_seg")):
        _conv_module(layout, f"decode_head.{name}.conv", width, channels, 3, norm_first=True)
        _bn(layout, f"decode_head.{name}.norm", channels)
        layout[f"decode_head.{classifier}.weight"] = (outputs, channels, 1, 1)
        layout[f"decode_head.{classifier}.bias"] = (outputs,)
    return layout


def _fcn_head(layout: Layout, prefix: str, cin: int, channels: int, num_convs: int, classes: int) -> None:
    """``decode_heads/fcn_head.py`` FCNHead with concat_input=False: convs.N ConvModules, then ``conv_seg``."""
    for index in range(num_convs):
        _conv_module(layout, f"{prefix}.convs.{index}", cin if index == 0 else channels, channels, 3)
    layout[f"{prefix}.conv_seg.weight"] = (classes, channels, 1, 1)
    layout[f"{prefix}.conv_seg.bias"] = (classes,)


def bisenetv1_layout(classes: int = 19) -> Layout:
    """BiSeNetV1 (``backbones/bisenetv1.py``: context_path = ContextPath with backbone, arm16/arm32 =
    AttentionRefinementModule conv_layer/atten_conv_layer.1, conv_head32/16, gap_conv.1; spatial_path
    layer1..4; ffm = FeatureFusionModule conv1/conv_atten.0) on ResNet-18 + FCN head + two FCN auxiliary
    heads (``configs/_base_/models/bisenetv1_r18-d32.py``)."""
    layout = mmseg_resnet18_layout("backbone.context_path.backbone")
    for name, cin in (("arm16", 256), ("arm32", 512)):
        _conv_module(layout, f"backbone.context_path.{name}.conv_layer", cin, 128, 3)
        _conv_module(layout, f"backbone.context_path.{name}.atten_conv_layer.1", 128, 128, 1)
    _conv_module(layout, "backbone.context_path.conv_head32", 128, 128, 3)
    _conv_module(layout, "backbone.context_path.conv_head16", 128, 128, 3)
    _conv_module(layout, "backbone.context_path.gap_conv.1", 512, 128, 1)
    for index, (cin, cout, k) in enumerate(((3, 64, 7), (64, 64, 3), (64, 64, 3), (64, 128, 1)), start=1):
        _conv_module(layout, f"backbone.spatial_path.layer{index}", cin, cout, k)
    _conv_module(layout, "backbone.ffm.conv1", 256, 256, 1)
    _conv_module(layout, "backbone.ffm.conv_atten.0", 256, 256, 1)
    _fcn_head(layout, "decode_head", 256, 256, 1, classes)
    for index in range(2):
        _fcn_head(layout, f"auxiliary_head.{index}", 128, 64, 1, classes)
    return layout


def _dw_separable(layout: Layout, prefix: str, cin: int, cout: int, *, pointwise_norm: bool) -> None:
    """mmcv's DepthwiseSeparableConvModule: depthwise_conv, pointwise_conv (ConvModules; no norm -> a bias)."""
    _conv_module(layout, f"{prefix}.depthwise_conv", cin, cin, 3, groups=cin)
    if pointwise_norm:
        _conv_module(layout, f"{prefix}.pointwise_conv", cin, cout, 1)
    else:
        layout[f"{prefix}.pointwise_conv.conv.weight"] = (cout, cin, 1, 1)
        layout[f"{prefix}.pointwise_conv.conv.bias"] = (cout,)


def _ge_layer(layout: Layout, prefix: str, cin: int, cout: int, stride: int) -> None:
    """``backbones/bisenetv2.py`` GELayer: conv1, dwconv.0(/1), shortcut.0 (stride 2), conv2.0."""
    middle = 6 * cin
    _conv_module(layout, f"{prefix}.conv1", cin, cin, 3)
    _conv_module(layout, f"{prefix}.dwconv.0", cin, middle, 3, groups=cin)
    if stride == 2:
        _conv_module(layout, f"{prefix}.dwconv.1", middle, middle, 3, groups=middle)
        _dw_separable(layout, f"{prefix}.shortcut.0", cin, cout, pointwise_norm=True)
    _conv_module(layout, f"{prefix}.conv2.0", middle, cout, 1)


def bisenetv2_layout(classes: int = 19) -> Layout:
    """BiSeNetV2 (``backbones/bisenetv2.py``: detail.detail_branch, semantic.stage1 = StemBlock conv_first/
    convs/fuse_last, stage2..4 GELayers, stage4_CEBlock gap.1/conv_gap/conv_last, bga = BGALayer) + FCN head
    + four FCN auxiliary heads (``configs/_base_/models/bisenetv2.py``)."""
    layout: Layout = {}
    cin = 3
    for stage, width in enumerate((64, 64, 128)):
        for index in range(2 if stage == 0 else 3):
            _conv_module(layout, f"backbone.detail.detail_branch.{stage}.{index}", cin, width, 3)
            cin = width
    stem = "backbone.semantic.stage1"
    _conv_module(layout, f"{stem}.conv_first", 3, 16, 3)
    _conv_module(layout, f"{stem}.convs.0", 16, 8, 1)
    _conv_module(layout, f"{stem}.convs.1", 8, 16, 3)
    _conv_module(layout, f"{stem}.fuse_last", 32, 16, 3)
    cin = 16
    for stage, (width, layers) in enumerate(((32, 2), (64, 2), (128, 4)), start=2):
        for index in range(layers):
            _ge_layer(layout, f"backbone.semantic.stage{stage}.{index}", cin, width, 2 if index == 0 else 1)
            cin = width
    ce = "backbone.semantic.stage4_CEBlock"
    _bn(layout, f"{ce}.gap.1", 128)
    _conv_module(layout, f"{ce}.conv_gap", 128, 128, 1)
    _conv_module(layout, f"{ce}.conv_last", 128, 128, 3)
    bga = "backbone.bga"
    _dw_separable(layout, f"{bga}.detail_dwconv.0", 128, 128, pointwise_norm=False)
    _conv_module(layout, f"{bga}.detail_down.0", 128, 128, 3)
    _conv_module(layout, f"{bga}.semantic_conv.0", 128, 128, 3)
    _dw_separable(layout, f"{bga}.semantic_dwconv.0", 128, 128, pointwise_norm=False)
    _conv_module(layout, f"{bga}.conv", 128, 128, 3)
    _fcn_head(layout, "decode_head", 128, 1024, 1, classes)
    for index, (cin, channels) in enumerate(((16, 16), (32, 64), (64, 256), (128, 1024))):
        _fcn_head(layout, f"auxiliary_head.{index}", cin, channels, 2, classes)
    return layout
