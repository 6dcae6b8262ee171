"""One APIRouter per resource: retailers, segments, models, admin."""

from services.assigner.routes.admin import admin_router
from services.assigner.routes.models import router as models_router
from services.assigner.routes.retailers import router as retailers_router
from services.assigner.routes.segments import router as segments_router

__all__ = ["admin_router", "models_router", "retailers_router", "segments_router"]
