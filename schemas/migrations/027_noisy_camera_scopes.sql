-- Scoped operators see the noisy-camera figures and reviews of the cameras they see (the camera
-- row decides, under its own policy), like everything else about their divisions.
ALTER TABLE liandong.camera_suppressions ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.camera_suppressions FOR SELECT TO liandong_operator
    USING (EXISTS (SELECT 1 FROM liandong.cameras c WHERE c.device_id = camera_suppressions.device_id));
ALTER TABLE liandong.camera_reviews ENABLE ROW LEVEL SECURITY;
CREATE POLICY operator_scope ON liandong.camera_reviews FOR SELECT TO liandong_operator
    USING (EXISTS (SELECT 1 FROM liandong.cameras c WHERE c.device_id = camera_reviews.device_id));
