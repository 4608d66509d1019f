from .occlusion_shapes import CLASSES as OCCLUSION_SHAPES_CLASSES
from .occlusion_shapes import make_dataset as make_occlusion_shapes
from .shape_classes import make_dataset as make_shape_classes

__all__ = ['OCCLUSION_SHAPES_CLASSES', 'make_occlusion_shapes', 'make_shape_classes']
